#include "model/FaceModel.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "core/Env.h"
#include "core/Error.h"
#include "model/FaceModelImpl.h"
#include "model/Sha256.h"
#include "render/TensorText.h"

namespace facebatch::model {
namespace {

using render::ShapeString;

void CheckTensor(const at::Tensor& t, const char* what, std::vector<int64_t> shape, c10::Device device) {
  if (!t.defined()) throw Error(fmt::format("{}: undefined tensor", what));
  if (t.scalar_type() != at::kFloat) throw Error(fmt::format("{}: expected float32, got {}", what, c10::toString(t.scalar_type())));
  if (t.device() != device) throw Error(fmt::format("{}: on {}, the model is on {}", what, t.device().str(), device.str()));
  if (t.dim() != static_cast<int64_t>(shape.size())) throw Error(fmt::format("{}: expected shape {}, got {}", what, ShapeString(shape), ShapeString(t.sizes())));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] >= 0 && t.size(i) != shape[i])
      throw Error(fmt::format("{}: expected shape {} (-1: any), got {}", what, ShapeString(shape), ShapeString(t.sizes())));
}

std::vector<at::Tensor> ParamsOf(const torch::nn::Module& m) {
  auto p = m.parameters(true);
  return {p.begin(), p.end()};
}

int64_t CountOf(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters(true)) n += p.numel();
  return n;
}

void SetThreads(int n) { at::set_num_threads(std::max(1, n)); }

// Low-frequency separable cosine patterns (masked): the basis of an untrained linear model.
torch::Tensor CosineBasis(int rank, int U, int V, const torch::Tensor& mask, double amplitude) {
  auto basis = torch::zeros({rank, 3, U, V});
  auto r = (torch::arange(U, torch::kFloat) + 0.5) / U;
  auto c = (torch::arange(V, torch::kFloat) + 0.5) / V;
  int k = 0;
  for (int d = 0; k < rank; ++d)
    for (int ky = 0; ky <= d && k < rank; ++ky)
      for (int ch = 0; ch < 3 && k < rank; ++ch, ++k) {
        int kx = d - ky;
        auto pattern = torch::outer(torch::cos(M_PI * ky * r), torch::cos(M_PI * kx * c)) * mask;
        basis[k][ch] = pattern * amplitude / std::max(1e-6, pattern.norm().item<double>() / std::sqrt(double(U * V)));
      }
  return basis;
}

}  // namespace

at::Tensor DecodedMaps::residual() const { return value - proxy; }

void InstallTorchThreadHook() { env::SetTorchThreadHook(&SetThreads); }

void CheckTemplate(const render::FaceTemplate& t, const ModelConfig& c) {
  auto bad = [&](const std::string& m) { throw Error("face template does not fit the model configuration: " + m); };
  auto check = [&](const at::Tensor& x, const char* name, std::vector<int64_t> shape) {
    if (!x.defined()) bad(std::string(name) + " missing");
    if (x.sizes() != at::IntArrayRef(shape)) bad(fmt::format("{} is {}, expected {}", name, ShapeString(x.sizes()), ShapeString(shape)));
  };
  check(t.topology.mask, "mask", {c.uv_rows, c.uv_cols});
  check(t.mean_shape, "mean_shape", {3, c.uv_rows, c.uv_cols});
  check(t.mean_albedo, "mean_albedo", {3, c.uv_rows, c.uv_cols});
}

render::FaceTemplate TemplateTo(const render::FaceTemplate& t, c10::Device device) {
  auto mv = [&](const at::Tensor& x) { return x.defined() ? x.to(device) : x; };
  render::FaceTemplate o = t;
  auto& a = o.topology;
  a.mask = mv(a.mask), a.vertex_of_pixel = mv(a.vertex_of_pixel), a.pixel_of_vertex = mv(a.pixel_of_vertex);
  a.vertex_uv = mv(a.vertex_uv), a.triangles = mv(a.triangles), a.landmarks68 = mv(a.landmarks68), a.flip = mv(a.flip);
  o.mean_shape = mv(o.mean_shape), o.mean_albedo = mv(o.mean_albedo), o.landmarks68_uv = mv(o.landmarks68_uv);
  return o;
}

Normalisation DefaultNormalisation(const render::FaceTemplate& t, int image_size) {
  auto mask = t.topology.mask.to(torch::kCPU).to(torch::kBool);
  auto shape = t.mean_shape.to(torch::kCPU).to(torch::kFloat);
  double s = 1, xc = 0, yc = 0;
  if (mask.any().item<bool>()) {
    auto xs = shape[0].masked_select(mask), ys = shape[1].masked_select(mask);
    double x0 = xs.min().item<double>(), x1 = xs.max().item<double>();
    double y0 = ys.min().item<double>(), y1 = ys.max().item<double>();
    if (x1 > x0) s = 0.75 * image_size / (x1 - x0);
    xc = 0.5 * (x0 + x1), yc = 0.5 * (y0 + y1);
  }
  double centre = 0.5 * (image_size - 1);  // pixel-centre origin: the crop centre
  Normalisation n;
  n.m_mean = torch::tensor({s, 0.0, 0.0, centre - s * xc, 0.0, -s, 0.0, centre + s * yc}, torch::kFloat);
  n.m_std = torch::tensor({0.1 * s, 0.1 * s, 0.1 * s, 10.0, 0.1 * s, 0.1 * s, 0.1 * s, 10.0}, torch::kFloat);
  n.l_mean = torch::zeros({ModelConfig::kLightingSize});
  const float dc = static_cast<float>(1.0 / 0.28209479177387814);
  n.l_mean[0] = dc, n.l_mean[9] = dc, n.l_mean[18] = dc;
  n.l_std = torch::full({ModelConfig::kLightingSize}, 0.5f);
  return n;
}

FaceModel FaceModel::Create(const ModelConfig& config, const render::FaceTemplate& tmpl, uint64_t seed) {
  InstallTorchThreadHook();
  config.Check();
  CheckTemplate(tmpl, config);
  auto impl = std::make_shared<Impl>();
  impl->config = config;
  impl->face_template = TemplateTo(tmpl, torch::kCPU);
  {
    // Seeded initialisation without disturbing the caller's global RNG stream.
    auto gen = at::detail::getDefaultCPUGenerator();
    auto state = gen.get_state();
    torch::manual_seed(seed);
    impl->net = nets::ModelNet(config);
    gen.set_state(state);
  }
  impl->mask = impl->face_template.topology.mask.to(torch::kFloat).view({1, 1, config.uv_rows, config.uv_cols});
  impl->norm = DefaultNormalisation(impl->face_template, config.image_size);
  if (config.kind == ModelKind::kLinear) {
    torch::NoGradGuard g;
    auto* sd = dynamic_cast<nets::LinearDecoder*>(impl->net->shape_decoder.get());
    auto* ad = dynamic_cast<nets::LinearDecoder*>(impl->net->albedo_decoder.get());
    auto m2 = impl->mask[0][0];
    auto extent = (impl->face_template.mean_shape.abs() * m2).max().item<double>();
    sd->mean.copy_(impl->face_template.mean_shape);
    ad->mean.copy_(impl->face_template.mean_albedo);
    sd->basis.copy_(CosineBasis(config.latent_shape, config.uv_rows, config.uv_cols, m2, 0.02 * std::max(extent, 1e-3)));
    ad->basis.copy_(CosineBasis(config.latent_albedo, config.uv_rows, config.uv_cols, m2, 0.02));
  }
  impl->net->eval();
  return FaceModel(impl);
}

FaceModel FaceModel::Clone() const {
  const auto& m = *impl_;
  FaceModel copy = Create(m.config, TemplateTo(m.face_template, torch::kCPU), 0);
  {
    torch::NoGradGuard g;
    auto src = NamedTensors();
    auto dst = copy.NamedTensors();
    for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second.to(torch::kCPU));
  }
  auto n = m.norm;
  n.m_mean = n.m_mean.to(torch::kCPU).clone(), n.m_std = n.m_std.to(torch::kCPU).clone();
  n.l_mean = n.l_mean.to(torch::kCPU).clone(), n.l_std = n.l_std.to(torch::kCPU).clone();
  copy.impl_->norm = n;
  copy.impl_->provenance = m.provenance;
  copy.SetInferenceOptions(m.inference);
  copy.train(is_training());
  copy.to(device());
  return copy;
}

Encoding FaceModel::Encode(const at::Tensor& images) const {
  auto& m = *impl_;
  int S = m.config.image_size;
  CheckTensor(images, "Encode: images", {-1, 3, S, S}, device());
  auto out = m.net->encoder->forward(images);
  Encoding e;
  const int64_t B = images.size(0);
  e.f_shape = out[0];
  e.f_albedo = out[1];
  e.projection = (out[2] * m.norm.m_std + m.norm.m_mean).view({B, 2, 4});
  e.lighting = out[3] * m.norm.l_std + m.norm.l_mean;
  return e;
}

static DecodedMaps Decode(FaceModel::Impl& m, nets::MapDecoder& dec, const at::Tensor& f, int latent,
                          const at::Tensor& mean, const char* what, c10::Device device, Heads heads) {
  CheckTensor(f, what, {-1, latent}, device);
  auto out = dec.Decode(f, false, heads == Heads::kTrueAndProxy || !m.inference.skip_unused_proxy_heads);
  DecodedMaps d;
  if (m.config.kind == ModelKind::kLinear) {
    d.value = out.value;
    d.proxy = out.value;
    return d;
  }
  // Offsets from the template (DESIGN.md "Template"), zero outside the mask.
  d.value = mean.unsqueeze(0) + m.mask * out.value;
  if (!m.config.proxy)
    d.proxy = d.value;
  else if (out.proxy.defined())
    d.proxy = mean.unsqueeze(0) + m.mask * out.proxy;
  return d;
}

DecodedMaps FaceModel::DecodeShape(const at::Tensor& f, Heads heads) const {
  return Decode(*impl_, *impl_->net->shape_decoder, f, impl_->config.latent_shape, impl_->face_template.mean_shape,
                "DecodeShape: f_shape", device(), heads);
}

DecodedMaps FaceModel::DecodeAlbedo(const at::Tensor& f, Heads heads) const {
  return Decode(*impl_, *impl_->net->albedo_decoder, f, impl_->config.latent_albedo, impl_->face_template.mean_albedo,
                "DecodeAlbedo: f_albedo", device(), heads);
}

void FaceModel::SetInferenceOptions(const InferenceOptions& options) {
  impl_->inference = options;
  nets::SetInference(*impl_->net, options);
}
InferenceOptions FaceModel::inference_options() const { return impl_->inference; }

std::vector<at::Tensor> FaceModel::parameters() const { return ParamsOf(*impl_->net); }
std::vector<at::Tensor> FaceModel::encoder_parameters() const { return ParamsOf(*impl_->net->encoder); }
std::vector<at::Tensor> FaceModel::shape_decoder_parameters() const { return ParamsOf(*impl_->net->shape_decoder); }
std::vector<at::Tensor> FaceModel::albedo_decoder_parameters() const { return ParamsOf(*impl_->net->albedo_decoder); }

ParameterCounts FaceModel::CountParameters() const {
  ParameterCounts c;
  c.encoder = CountOf(*impl_->net->encoder);
  if (impl_->config.kind == ModelKind::kLinear) {  // the PCA mean and basis are the linear decoder's parameters
    for (auto* d : {impl_->net->shape_decoder.get(), impl_->net->albedo_decoder.get()}) {
      int64_t n = 0;
      for (const auto& b : d->buffers(true)) n += b.numel();
      (d == impl_->net->shape_decoder.get() ? c.shape_decoder : c.albedo_decoder) = n;
    }
  } else {
    c.shape_decoder = CountOf(*impl_->net->shape_decoder);
    c.albedo_decoder = CountOf(*impl_->net->albedo_decoder);
  }
  return c;
}

void FaceModel::train(bool on) { impl_->net->train(on); }
void FaceModel::train(bool encoder, bool decoders) {
  impl_->net->train(decoders);
  impl_->net->encoder->train(encoder);
}
bool FaceModel::is_training() const { return impl_->net->is_training(); }

void FaceModel::to(c10::Device device) {
  auto& m = *impl_;
  m.net->to(device);
  m.face_template = TemplateTo(m.face_template, device);
  m.mask = m.mask.to(device);
  m.norm.m_mean = m.norm.m_mean.to(device), m.norm.m_std = m.norm.m_std.to(device);
  m.norm.l_mean = m.norm.l_mean.to(device), m.norm.l_std = m.norm.l_std.to(device);
}

c10::Device FaceModel::device() const { return impl_->mask.device(); }
const ModelConfig& FaceModel::config() const { return impl_->config; }
const render::FaceTemplate& FaceModel::face_template() const { return impl_->face_template; }
const Normalisation& FaceModel::normalisation() const { return impl_->norm; }
Provenance& FaceModel::provenance() { return impl_->provenance; }
const Provenance& FaceModel::provenance() const { return impl_->provenance; }

void FaceModel::SetNormalisation(const Normalisation& n) {
  auto dev = device();
  CheckTensor(n.m_mean, "normalisation m_mean", {8}, dev);
  CheckTensor(n.m_std, "normalisation m_std", {8}, dev);
  CheckTensor(n.l_mean, "normalisation l_mean", {27}, dev);
  CheckTensor(n.l_std, "normalisation l_std", {27}, dev);
  impl_->norm = n;
}

std::vector<std::pair<std::string, at::Tensor>> FaceModel::NamedTensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : impl_->net->named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : impl_->net->named_buffers(true)) out.emplace_back(b.key(), b.value());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::string FaceModel::WeightsHash() const {
  auto named = NamedTensors();
  const auto& n = impl_->norm;
  named.emplace_back("normalisation/l_mean", n.l_mean);
  named.emplace_back("normalisation/l_std", n.l_std);
  named.emplace_back("normalisation/m_mean", n.m_mean);
  named.emplace_back("normalisation/m_std", n.m_std);
  Sha256 h;
  for (const auto& [name, t] : named) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    h.Update(name);
    h.Update(fmt::format("\n{}\n{}\n", c10::toString(c.scalar_type()), ShapeString(c.sizes())));
    h.Update(c.data_ptr(), c.numel() * c.element_size());
  }
  return h.HexDigest();
}

FaceModel BuildLinearModel(const at::Tensor& shape_maps, const at::Tensor& albedo_maps, int rank_shape, int rank_albedo,
                           const render::FaceTemplate& tmpl, ModelConfig config, uint64_t seed) {
  const int64_t N = shape_maps.size(0);
  auto check = [&](const at::Tensor& x, const char* name) {
    if (x.dim() != 4 || x.size(0) != N || x.size(1) != 3 || x.size(2) != config.uv_rows || x.size(3) != config.uv_cols)
      throw Error(fmt::format("BuildLinearModel: {} must be [N, 3, {}, {}] with N = {}, got {}", name, config.uv_rows,
                              config.uv_cols, N, ShapeString(x.sizes())));
  };
  check(shape_maps, "shape maps");
  check(albedo_maps, "albedo maps");
  if (N < 2) throw Error("BuildLinearModel: needs at least 2 samples");
  if (rank_shape < 1 || rank_albedo < 1 || rank_shape > N - 1 || rank_albedo > N - 1)
    throw Error(fmt::format("BuildLinearModel: ranks must be in [1, N - 1 = {}]", N - 1));
  config.kind = ModelKind::kLinear;
  config.latent_shape = rank_shape;
  config.latent_albedo = rank_albedo;
  FaceModel model = FaceModel::Create(config, tmpl, seed);
  torch::NoGradGuard g;
  auto pca = [&](const at::Tensor& maps, int rank, nets::MapDecoder* d) {
    auto* lin = dynamic_cast<nets::LinearDecoder*>(d);
    auto x = maps.detach().to(torch::kCPU).to(torch::kDouble).reshape({N, -1});
    auto mean = x.mean(0);
    auto svd = torch::linalg_svd(x - mean, /*full_matrices=*/false);
    auto S = std::get<1>(svd).slice(0, 0, rank);
    auto Vh = std::get<2>(svd).slice(0, 0, rank);
    auto basis = Vh * (S / std::sqrt(double(N - 1))).unsqueeze(1);
    lin->mean.copy_(mean.view_as(lin->mean).to(torch::kFloat));
    lin->basis.copy_(basis.view_as(lin->basis).to(torch::kFloat));
  };
  pca(shape_maps, rank_shape, model.impl().net->shape_decoder.get());
  pca(albedo_maps, rank_albedo, model.impl().net->albedo_decoder.get());
  return model;
}

}  // namespace facebatch::model
