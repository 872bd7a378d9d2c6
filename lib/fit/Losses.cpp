#include "fit/Losses.h"

#include "core/Error.h"
#include "fit/TensorChecks.h"
#include "render/Colour.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <cmath>
#include <sstream>

namespace facebatch::fit {

namespace {

namespace idx = torch::indexing;

LossResult Result(at::Tensor per_image) {
  LossResult r;
  r.mean = per_image.mean();
  r.per_image = std::move(per_image);
  return r;
}

// Safe norm: (sum_c x^2)^(q/2) reduced over `dim`, 0 with a zero gradient
// where sum_c x^2 <= eps (instead of NaN at 0).
at::Tensor SmoothNorm(const at::Tensor& x, int64_t dim, double q = 1.0) {
  const auto sq = x.pow(2).sum(dim);
  return torch::where(sq > kNormEps, sq.clamp_min(kNormEps).pow(q / 2.0), torch::zeros_like(sq));
}

at::Tensor FlipColumns(const at::Tensor& x) { return x.flip({-1}); }

// Mask [U, V] bool -> float [1, 1, U, V] in dtype/device of `like`.
at::Tensor MaskAsFloat(const at::Tensor& mask, const at::Tensor& like) {
  return mask.to(like.device(), like.scalar_type()).view({1, 1, mask.size(0), mask.size(1)});
}

// Bool or float weights -> float of `like`'s dtype/device.
at::Tensor Weights(const at::Tensor& w, const at::Tensor& like) {
  return w.to(like.device(), like.scalar_type());
}

}  // namespace

// ---------------------------------------------------------------------------

LossResult PhotometricLoss(const at::Tensor& rendered, const at::Tensor& input,
                           const at::Tensor& coverage) {
  const char* fn = "PhotometricLoss";
  CheckFloat(fn, "rendered", rendered, {-1, 3, -1, -1});
  CheckFloat(fn, "input", input, {rendered.size(0), 3, rendered.size(2), rendered.size(3)});
  CheckSameDevice(fn, "input", input, rendered);
  CheckMask(fn, "coverage", coverage, {rendered.size(0), 1, rendered.size(2), rendered.size(3)});
  CheckSameDevice(fn, "coverage", coverage, rendered);
  const auto w = Weights(coverage, rendered).squeeze(1);           // [B, H, W]
  const auto dist = SmoothNorm(rendered - input.to(rendered.scalar_type()), 1);  // [B, H, W]
  const auto num = (w * dist).sum({1, 2});
  const auto den = w.sum({1, 2});
  return Result(torch::where(den > 0, num / den.clamp_min(1e-12), torch::zeros_like(num)));
}

LossResult ImageL21(const at::Tensor& rendered, const at::Tensor& input, const at::Tensor& coverage) {
  return PhotometricLoss(render::LinearToSrgb(rendered), render::LinearToSrgb(input), coverage);
}

// ---------------------------------------------------------------------------
// Perceptual loss (eqs. 5-6)

struct PerceptualLoss::Impl {
  mutable torch::jit::Module module;
  mutable c10::optional<c10::Device> device;
  mutable c10::optional<c10::ScalarType> dtype;
};

namespace {

torch::jit::Module LoadModule(const std::string& path) {
  try {
    return torch::jit::load(path);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw InputError(path, "cannot load the TorchScript feature network: " + what.substr(0, 300));
  }
}

void Freeze(torch::jit::Module& m) {
  m.eval();
  for (auto p : m.parameters()) p.requires_grad_(false);
}

}  // namespace

PerceptualLoss::PerceptualLoss(Options options) : options_(std::move(options)) {
  if (options_.model_path.empty()) throw UsageError("PerceptualLoss: no feature network path given");
  impl_ = std::make_unique<Impl>();
  impl_->module = LoadModule(options_.model_path);
  Freeze(impl_->module);
  if (!impl_->module.find_method(options_.method)) {
    throw InputError(options_.model_path, "the feature network has no method '" + options_.method + "'");
  }
}

PerceptualLoss::PerceptualLoss(Options options, const torch::jit::Module& module)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->module = module.clone();
  Freeze(impl_->module);
  if (!impl_->module.find_method(options_.method)) {
    throw Error("PerceptualLoss: the feature network has no method '" + options_.method + "'");
  }
}

PerceptualLoss::~PerceptualLoss() = default;
PerceptualLoss::PerceptualLoss(PerceptualLoss&&) noexcept = default;
PerceptualLoss& PerceptualLoss::operator=(PerceptualLoss&&) noexcept = default;

std::vector<std::pair<std::string, at::Tensor>> PerceptualLoss::Features(const at::Tensor& images) const {
  const char* fn = "PerceptualLoss";
  CheckFloat(fn, "images", images, {-1, 3, -1, -1});
  if (!impl_->device || *impl_->device != images.device() || *impl_->dtype != images.scalar_type()) {
    impl_->module.to(images.device(), images.scalar_type());
    impl_->device = images.device();
    impl_->dtype = images.scalar_type();
  }
  at::Tensor x = images;
  if (!options_.mean.empty() || !options_.std.empty()) {
    if (options_.mean.size() != 3 || options_.std.size() != 3) {
      throw UsageError("PerceptualLoss: mean and std need 3 values each (RGB)");
    }
    auto opts = images.options().requires_grad(false);
    auto mean = torch::tensor(options_.mean, opts.dtype(torch::kFloat64)).to(opts).view({1, 3, 1, 1});
    auto stdv = torch::tensor(options_.std, opts.dtype(torch::kFloat64)).to(opts).view({1, 3, 1, 1});
    x = (x - mean) / stdv;
  }
  auto method = impl_->module.get_method(options_.method);
  c10::IValue out;
  try {
    out = method({x});
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw Error("PerceptualLoss: the feature network failed on input " +
                ShapeString(x) + ": " + what.substr(0, 300));
  }
  std::vector<std::pair<std::string, at::Tensor>> all;
  if (out.isTensor()) {
    all.emplace_back("0", out.toTensor());
  } else if (out.isTuple() || out.isList()) {
    std::vector<c10::IValue> items;
    if (out.isTuple()) {
      items = out.toTupleRef().elements().vec();
    } else {
      items = out.toListRef().vec();
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].isTensor()) throw Error(fmt::format("PerceptualLoss: output {} is not a tensor", i));
      all.emplace_back(std::to_string(i), items[i].toTensor());
    }
  } else if (out.isGenericDict()) {
    for (const auto& kv : out.toGenericDict()) {
      if (!kv.key().isString() || !kv.value().isTensor()) {
        throw Error("PerceptualLoss: a dict output must map str to Tensor");
      }
      all.emplace_back(kv.key().toStringRef(), kv.value().toTensor());
    }
  } else {
    throw Error("PerceptualLoss: the feature network must return a Tensor, a tuple/list of "
                "Tensors or a Dict[str, Tensor], got " + out.tagKind());
  }
  if (options_.layers.empty()) return all;
  std::vector<std::pair<std::string, at::Tensor>> selected;
  for (const auto& name : options_.layers) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& p) { return p.first == name; });
    if (it == all.end()) {
      std::string names;
      for (const auto& p : all) names += (names.empty() ? "" : ", ") + p.first;
      throw UsageError("PerceptualLoss: the feature network has no output '" + name +
                       "' (it has: " + names + ")");
    }
    selected.push_back(*it);
  }
  return selected;
}

LossResult PerceptualLoss::operator()(const at::Tensor& rendered, const at::Tensor& input) const {
  const char* fn = "PerceptualLoss";
  CheckFloat(fn, "rendered", rendered, {-1, 3, -1, -1});
  CheckFloat(fn, "input", input, {rendered.size(0), 3, rendered.size(2), rendered.size(3)});
  CheckSameDevice(fn, "input", input, rendered);
  const auto feat_r = Features(rendered);
  std::vector<std::pair<std::string, at::Tensor>> feat_i;
  {
    torch::NoGradGuard no_grad;
    feat_i = Features(input.to(rendered.scalar_type()).detach());
  }
  if (feat_r.empty()) throw Error("PerceptualLoss: the feature network returned no layer");
  const int64_t batch = rendered.size(0);
  at::Tensor total = torch::zeros({batch}, rendered.options().requires_grad(false));
  for (size_t j = 0; j < feat_r.size(); ++j) {
    if (feat_r[j].second.dim() < 1 || feat_r[j].second.size(0) != batch) {
      throw Error(fmt::format("PerceptualLoss: layer '{}' has shape {}, expected batch size {} first",
                              feat_r[j].first, ShapeString(feat_r[j].second), batch));
    }
    const auto a = feat_r[j].second.reshape({batch, -1});
    const auto b = feat_i[j].second.reshape({batch, -1}).to(a.scalar_type());
    at::Tensor d;
    if (options_.distance == FeatureDistance::kL2) {
      // eq. 5: ||phi_j(I^) - phi_j(I)||_2^2 / (W_j H_j C_j)
      d = (a - b).pow(2).mean(1);
    } else {
      d = 1.0 - torch::cosine_similarity(a, b, 1, 1e-8);
    }
    total = total + d;
  }
  return Result(total / static_cast<double>(feat_r.size()));
}

// ---------------------------------------------------------------------------
// Landmarks (eq. 7)

at::Tensor ProjectPoints(const at::Tensor& projection, const at::Tensor& points) {
  const char* fn = "ProjectPoints";
  CheckFloat(fn, "projection", projection, {-1, 2, 4});
  CheckFloat(fn, "points", points, {projection.size(0), -1, 3});
  CheckSameDevice(fn, "points", points, projection);
  const auto lin = projection.index({idx::Slice(), idx::Slice(), idx::Slice(0, 3)});  // [B,2,3]
  const auto t = projection.index({idx::Slice(), idx::Slice(), 3});                    // [B,2]
  return torch::matmul(points.to(projection.scalar_type()), lin.transpose(1, 2)) + t.unsqueeze(1);
}

LossResult LandmarkLoss(const at::Tensor& projected, const at::Tensor& target,
                        const at::Tensor& weights, double scale) {
  const char* fn = "LandmarkLoss";
  CheckFloat(fn, "projected", projected, {-1, -1, 2});
  CheckFloat(fn, "target", target, {projected.size(0), projected.size(1), 2});
  CheckSameDevice(fn, "target", target, projected);
  if (!(scale > 0)) throw UsageError(fmt::format("{}: scale must be > 0, got {}", fn, scale));
  at::Tensor w;
  if (weights.defined()) {
    CheckMask(fn, "weights", weights, {projected.size(0), projected.size(1)});
    CheckSameDevice(fn, "weights", weights, projected);
    w = Weights(weights, projected);
  } else {
    w = torch::ones({projected.size(0), projected.size(1)}, projected.options().requires_grad(false));
  }
  const auto diff = (projected - target.to(projected.scalar_type())) / scale;
  const auto sq = diff.pow(2).sum(2);  // [B, K]
  const auto num = (w * sq).sum(1);
  const auto den = w.sum(1);
  return Result(torch::where(den > 0, num / den.clamp_min(1e-12), torch::zeros_like(num)));
}

// ---------------------------------------------------------------------------
// Regularisers

LossResult AlbedoSymmetryLoss(const at::Tensor& albedo, const at::Tensor& mask) {
  const char* fn = "AlbedoSymmetryLoss";
  CheckFloat(fn, "albedo", albedo, {-1, -1, -1, -1});
  CheckUVMask(fn, mask, albedo);
  const auto m = MaskAsFloat(mask, albedo);
  const auto both = m * FlipColumns(m);  // pixels whose mirror is also in the mask
  const auto l1 = (albedo - FlipColumns(albedo)).abs().sum(1, /*keepdim=*/true);  // [B,1,U,V]
  const auto count = both.sum().clamp_min(1.0);
  return Result((l1 * both).sum({1, 2, 3}) / count);
}

at::Tensor Chromaticity(const at::Tensor& rgb) {
  CheckFloat("Chromaticity", "rgb", rgb, {-1, 3, -1, -1});
  const auto norm = rgb.pow(2).sum(1, true).sqrt();
  return torch::where(norm > 1e-6, rgb / norm.clamp_min(1e-6), torch::zeros_like(rgb));
}

LossResult AlbedoConstancyLoss(const at::Tensor& albedo, const at::Tensor& input_uv,
                               const at::Tensor& validity, const at::Tensor& mask, double alpha,
                               double p) {
  const char* fn = "AlbedoConstancyLoss";
  CheckFloat(fn, "albedo", albedo, {-1, -1, -1, -1});
  CheckFloat(fn, "input_uv", input_uv, {albedo.size(0), 3, albedo.size(2), albedo.size(3)});
  CheckSameDevice(fn, "input_uv", input_uv, albedo);
  CheckUVMask(fn, mask, albedo);
  if (!(p > 0)) throw UsageError(fmt::format("{}: p must be > 0, got {}", fn, p));
  if (!(alpha >= 0)) throw UsageError(fmt::format("{}: alpha must be >= 0, got {}", fn, alpha));
  at::Tensor valid = MaskAsFloat(mask, albedo);  // [1,1,U,V]
  const auto in_mask = valid;
  if (validity.defined()) {
    CheckMask(fn, "validity", validity, {albedo.size(0), 1, albedo.size(2), albedo.size(3)});
    CheckSameDevice(fn, "validity", validity, albedo);
    valid = valid * Weights(validity, albedo);  // [B,1,U,V]
  }
  const auto chroma = Chromaticity(input_uv.detach().to(albedo.scalar_type()));
  at::Tensor total;
  at::Tensor pairs_in_mask = torch::zeros({}, albedo.options().requires_grad(false));
  // Right neighbours (dim 3) and down neighbours (dim 2): pair (i, j) = (x[k], x[k + 1]).
  for (int64_t dim : {3, 2}) {
    const int64_t n = albedo.size(dim);
    if (n < 2) continue;
    auto lo = [&](const at::Tensor& t) { return t.narrow(dim, 0, n - 1); };
    auto hi = [&](const at::Tensor& t) { return t.narrow(dim, 1, n - 1); };
    pairs_in_mask = pairs_in_mask + (lo(in_mask) * hi(in_mask)).sum();
    const auto pair_valid = lo(valid) * hi(valid);
    const auto w = torch::exp(-alpha * (lo(chroma) - hi(chroma)).pow(2).sum(1, true).sqrt());
    const auto d = SmoothNorm(lo(albedo) - hi(albedo), 1, p).unsqueeze(1);  // [B,1,..]
    const auto term = (pair_valid * w * d).sum({1, 2, 3});
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) total = (albedo * 0).sum({1, 2, 3});
  return Result(total / pairs_in_mask.clamp_min(1.0));
}

LossResult ShapeSmoothnessLoss(const at::Tensor& shape, const at::Tensor& mask) {
  const char* fn = "ShapeSmoothnessLoss";
  CheckFloat(fn, "shape", shape, {-1, -1, -1, -1});
  CheckUVMask(fn, mask, shape);
  const auto m = MaskAsFloat(mask, shape);
  // Sums of the 4 neighbours from one zero-padded copy: P[r+1, c+1] = x[r, c].
  auto neighbours = [](const at::Tensor& x) {
    const auto p = at::constant_pad_nd(x, {1, 1, 1, 1}, 0.0);
    const int64_t rows = x.size(2), cols = x.size(3);
    return p.narrow(2, 1, rows).narrow(3, 0, cols) + p.narrow(2, 1, rows).narrow(3, 2, cols) +
           p.narrow(2, 0, rows).narrow(3, 1, cols) + p.narrow(2, 2, rows).narrow(3, 1, cols);
  };
  at::Tensor count;
  {
    torch::NoGradGuard no_grad;
    count = neighbours(m);  // [1,1,U,V] masked neighbours per pixel
  }
  const auto has = m * (count > 0).to(shape.scalar_type());
  const auto lap = shape - neighbours(shape * m) / count.clamp_min(1.0);
  const auto norm = SmoothNorm(lap, 1).unsqueeze(1);  // [B,1,U,V]
  return Result((norm * has).sum({1, 2, 3}) / has.sum().clamp_min(1.0));
}

// ---------------------------------------------------------------------------
// Residuals

LossResult ResidualMagnitudeLoss(const at::Tensor& map, const at::Tensor& proxy,
                                 const at::Tensor& mask) {
  const char* fn = "ResidualMagnitudeLoss";
  CheckFloat(fn, "map", map, {-1, -1, -1, -1});
  CheckFloat(fn, "proxy", proxy, {map.size(0), map.size(1), map.size(2), map.size(3)});
  CheckSameDevice(fn, "proxy", proxy, map);
  CheckUVMask(fn, mask, map);
  const auto m = MaskAsFloat(mask, map);
  const auto l1 = (map - proxy.to(map.scalar_type())).abs().sum(1, true);
  return Result((l1 * m).sum({1, 2, 3}) / m.sum().clamp_min(1.0));
}

LossResult ResidualSymmetryLoss(const at::Tensor& shape, const at::Tensor& shape_proxy,
                                const at::Tensor& visibility, const at::Tensor& mask,
                                ResidualSymmetryMask which) {
  const char* fn = "ResidualSymmetryLoss";
  CheckFloat(fn, "shape", shape, {-1, 3, -1, -1});
  CheckFloat(fn, "shape_proxy", shape_proxy, {shape.size(0), 3, shape.size(2), shape.size(3)});
  CheckSameDevice(fn, "shape_proxy", shape_proxy, shape);
  CheckMask(fn, "visibility", visibility, {shape.size(0), 1, shape.size(2), shape.size(3)});
  CheckSameDevice(fn, "visibility", visibility, shape);
  CheckUVMask(fn, mask, shape);
  const auto m = MaskAsFloat(mask, shape);
  const auto both = m * FlipColumns(m);
  const auto vis = Weights(visibility, shape);
  const auto t = which == ResidualSymmetryMask::kOccluded ? 1.0 - vis : vis;
  const auto dz = (shape - shape_proxy.to(shape.scalar_type())).narrow(1, 2, 1);  // [B,1,U,V]
  const auto l1 = (t * (dz - FlipColumns(dz))).abs() * both;
  return Result(l1.sum({1, 2, 3}) / both.sum().clamp_min(1.0));
}

at::Tensor VisibilityFromNormals(const at::Tensor& normals_uv, double softness) {
  CheckFloat("VisibilityFromNormals", "normals_uv", normals_uv, {-1, 3, -1, -1});
  if (!(softness >= 0)) {
    throw UsageError(fmt::format("VisibilityFromNormals: softness must be >= 0, got {}", softness));
  }
  const auto nz = normals_uv.detach().narrow(1, 2, 1);
  if (softness == 0) return (nz > 0).to(normals_uv.scalar_type());
  return (nz / softness).clamp(0.0, 1.0);
}

LossResult LatentPriorLoss(const at::Tensor& latent) {
  CheckFloat("LatentPriorLoss", "latent", latent, {-1, -1});
  return Result(latent.pow(2).mean(1));
}

// ---------------------------------------------------------------------------
// Pairings (eq. 15)

const char* PairingName(Pairing pairing) {
  switch (pairing) {
    case kProxyShapeProxyAlbedo: return "proxy-proxy";
    case kProxyShapeTrueAlbedo: return "proxy-true";
    case kTrueShapeProxyAlbedo: return "true-proxy";
    case kTrueShapeTrueAlbedo: return "true-true";
  }
  return "?";
}

namespace {
constexpr Pairing kAllPairings[] = {kProxyShapeProxyAlbedo, kProxyShapeTrueAlbedo,
                                    kTrueShapeProxyAlbedo, kTrueShapeTrueAlbedo};
}

unsigned ParsePairings(const std::string& text) {
  if (text == "paper") return kPaperPairings;
  if (text == "fit") return kFitPairings;
  unsigned bits = 0;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    bool found = false;
    for (Pairing p : kAllPairings) {
      if (item == PairingName(p)) {
        bits |= p;
        found = true;
      }
    }
    if (!found) {
      throw UsageError("unknown pairing '" + item +
                       "' (use paper, fit, or a comma list of proxy-proxy, proxy-true, "
                       "true-proxy, true-true: shape-albedo)");
    }
  }
  if (bits == 0) throw UsageError("no pairing selected");
  return bits;
}

std::string PairingsToString(unsigned pairings) {
  std::string s;
  for (Pairing p : kAllPairings) {
    if (pairings & p) s += (s.empty() ? "" : ",") + std::string(PairingName(p));
  }
  return s;
}

PairingLosses ReconstructionPairings(const at::Tensor& shape, const at::Tensor& shape_proxy,
                                     const at::Tensor& albedo, const at::Tensor& albedo_proxy,
                                     const at::Tensor& input, const RenderFn& render,
                                     unsigned pairings, const PerceptualLoss* perceptual,
                                     double perceptual_weight) {
  const char* fn = "ReconstructionPairings";
  if (!render) throw Error(std::string(fn) + ": no render callback");
  if ((pairings & 0xFu) == 0) throw Error(std::string(fn) + ": no pairing selected");
  CheckFloat(fn, "shape", shape, {-1, 3, -1, -1});
  CheckFloat(fn, "shape_proxy", shape_proxy, {shape.size(0), 3, shape.size(2), shape.size(3)});
  CheckFloat(fn, "albedo", albedo, {shape.size(0), 3, -1, -1});
  CheckFloat(fn, "albedo_proxy", albedo_proxy, {shape.size(0), 3, albedo.size(2), albedo.size(3)});
  CheckFloat(fn, "input", input, {shape.size(0), 3, -1, -1});
  PairingLosses out;
  for (Pairing p : kAllPairings) {
    if (!(pairings & p)) continue;
    const bool true_shape = p == kTrueShapeProxyAlbedo || p == kTrueShapeTrueAlbedo;
    const bool true_albedo = p == kProxyShapeTrueAlbedo || p == kTrueShapeTrueAlbedo;
    Rendering r = render(true_shape ? shape : shape_proxy, true_albedo ? albedo : albedo_proxy);
    LossResult l = PhotometricLoss(r.image, input, r.coverage);
    if (perceptual != nullptr && perceptual_weight > 0) {
      // eq. 6: L_rec = L_rec^i + lambda_f L_rec^f
      const LossResult f = (*perceptual)(r.image, input);
      l = Result(l.per_image + perceptual_weight * f.per_image);
    }
    out.total = out.total.per_image.defined() ? Result(out.total.per_image + l.per_image) : l;
    out.terms.emplace_back(p, std::move(l));
    out.renderings.push_back(std::move(r));
  }
  return out;
}

}  // namespace facebatch::fit
