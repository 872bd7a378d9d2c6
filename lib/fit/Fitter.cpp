#include "fit/Fitter.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>

#include "core/Error.h"
#include "fit/Camera.h"
#include "render/Render.h"
#include "render/Topology.h"

namespace facebatch::fit {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double Since(Clock::time_point t1, Clock::time_point t0) { return std::chrono::duration<double>(t1 - t0).count(); }

struct LatentName {
  unsigned bit;
  const char* name;
};
constexpr LatentName kLatentNames[] = {
    {kLatentShape, "shape"}, {kLatentAlbedo, "albedo"}, {kLatentProjection, "projection"}, {kLatentLighting, "lighting"}};

}  // namespace

unsigned ParseLatentSet(const std::string& text) {
  if (text == "all") return kAllLatents;
  unsigned set = 0;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    bool found = false;
    for (const auto& l : kLatentNames) {
      if (part == l.name) set |= l.bit, found = true;
    }
    if (!found) {
      throw UsageError(fmt::format("unknown latent '{}' in '{}' (expected all or a comma list of "
                                   "shape, albedo, projection, lighting)", part, text));
    }
  }
  if (set == 0) throw UsageError("no latent to optimise in '" + text + "'");
  return set;
}

unsigned ParseSchedule(const std::string& text) {
  if (text == "coarse-to-fine") return kStagePose | kStageAppearance | kStageJoint;
  unsigned set = 0;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part == "pose") set |= kStagePose;
    else if (part == "appearance") set |= kStageAppearance;
    else if (part == "joint") set |= kStageJoint;
    else
      throw UsageError(fmt::format("unknown stage '{}' in --schedule '{}' (expected coarse-to-fine, joint, or a "
                                   "comma list of pose, appearance, joint)", part, text));
  }
  if (set == 0) throw UsageError("--schedule: no stage in '" + text + "'");
  return set;
}

std::string LatentSetToString(unsigned set) {
  if (set == kAllLatents) return "all";
  std::string out;
  for (const auto& l : kLatentNames) {
    if (set & l.bit) out += (out.empty() ? "" : ",") + std::string(l.name);
  }
  return out;
}

LossWeights FitOptions::DefaultFitWeights() {
  LossWeights w;
  w.pairings = "fit";
  // A weak prior on f_S (mean f^2; not in the paper): landmarks and shading leave the depth of
  // the shape loosely constrained. Measured on 32 held-out synthetic faces at the default
  // schedule: aligned shape NME 0.0408 -> 0.0393, l2,1 0.0494 -> 0.0485 (docs/fit.md).
  w.latent_shape_prior = 0.005;
  // Stage 4's regularisers (FitOptions::refine; the latent stages do not use them).
  w.albedo_symmetry = w.albedo_constancy = w.shape_smoothness = 0.1;
  w.residual_shape = w.residual_albedo = w.residual_symmetry = 0.1;
  return w;
}

void FitOptions::Check() const {
  if (steps < 0) throw UsageError(fmt::format("fit: --steps must be >= 0, got {}", steps));
  ParseLatentSet(optimise);
  ParseOptimiserMethod(method);
  if (!(step_size > 0) || !std::isfinite(step_size)) throw UsageError("fit: --step-size must be > 0");
  ParseSchedule(schedule);
  if (appearance_steps < 0) throw UsageError("fit: --appearance-steps must be >= 0");
  if (!(appearance_step_size > 0) || !std::isfinite(appearance_step_size))
    throw UsageError("fit: --appearance-step-size must be > 0");
  if (photometric_region != "landmarks" && photometric_region != "rendered")
    throw UsageError("fit: --photometric-region must be landmarks or rendered, got '" + photometric_region + "'");
  if (!(outlier_threshold >= 0) || !std::isfinite(outlier_threshold))
    throw UsageError("fit: --outlier-threshold must be >= 0");
  if (!(relative_tolerance >= 0)) throw UsageError("fit: --tolerance must be >= 0");
  if (patience < 1) throw UsageError("fit: --patience must be >= 1");
  if (refine_steps < 0) throw UsageError("fit: --refine-steps must be >= 0");
  if (!(refine_outlier_threshold >= 0) || !std::isfinite(refine_outlier_threshold))
    throw UsageError("fit: --refine-outlier-threshold must be >= 0");
  if (!(refine_step_size > 0) || !std::isfinite(refine_step_size))
    throw UsageError("fit: --refine-step-size must be > 0");
  weights.Check("loss");
  Minimise().Check();
}

MinimiseOptions FitOptions::Minimise() const {
  MinimiseOptions m;
  m.max_iterations = steps;
  m.optimiser.method = ParseOptimiserMethod(method);
  m.optimiser.step_size = step_size;
  m.convergence.relative_tolerance = relative_tolerance;
  m.convergence.patience = patience;
  m.step_reduction = step_reduction;
  m.max_step_reductions = max_step_reductions;
  return m;
}

std::pair<at::Tensor, at::Tensor> PackLandmarks(const std::vector<std::vector<std::array<double, 2>>>& points,
                                                int image_size, int crop_size) {
  const int64_t B = static_cast<int64_t>(points.size());
  auto lm = torch::zeros({B, kPackedLandmarks, 2}, torch::kFloat32);
  auto w = torch::zeros({B, kPackedLandmarks}, torch::kFloat32);
  auto L = lm.accessor<float, 3>();
  auto W = w.accessor<float, 2>();
  // Pixel centres at integers in both sizes: x' = (x + 0.5) * s - 0.5.
  const double s = static_cast<double>(image_size) / crop_size;
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = points[b];
    int offset = p.size() == 68 ? 0 : p.size() == 5 ? 68 : -1;
    if (offset < 0) continue;
    for (size_t k = 0; k < p.size(); ++k) {
      if (!std::isfinite(p[k][0]) || !std::isfinite(p[k][1])) continue;
      L[b][offset + k][0] = static_cast<float>((p[k][0] + 0.5) * s - 0.5);
      L[b][offset + k][1] = static_cast<float>((p[k][1] + 0.5) * s - 0.5);
      W[b][offset + k] = 1.0f;
    }
  }
  return {lm, w};
}

std::vector<std::string> ObjectiveTermNames(const LossWeights& w) {
  std::vector<std::string> names;
  if (w.photometric > 0) names.push_back("photometric");
  if (w.landmark > 0) names.push_back("landmark");
  if (w.latent_shape_prior > 0) names.push_back("shape_prior");
  if (w.latent_albedo_prior > 0) names.push_back("albedo_prior");
  if (names.empty()) names.push_back("zero");
  names.push_back("total");
  return names;
}

namespace {
// Stage 4's regularisers in evaluation order (FitOptions::refine).
struct RefineTerm {
  const char* name;
  double LossWeights::*weight;
};
constexpr RefineTerm kRefineTerms[] = {
    {"albedo_symmetry", &LossWeights::albedo_symmetry},   {"albedo_constancy", &LossWeights::albedo_constancy},
    {"shape_smoothness", &LossWeights::shape_smoothness}, {"residual_shape", &LossWeights::residual_shape},
    {"residual_albedo", &LossWeights::residual_albedo},   {"residual_symmetry", &LossWeights::residual_symmetry}};
}  // namespace

model::Heads DecoderHeads(const LossWeights& weights) {
  return (weights.PairingBits() & ~unsigned(kTrueShapeTrueAlbedo)) ? model::Heads::kTrueAndProxy
                                                                   : model::Heads::kTrueOnly;
}

std::vector<std::string> FitTermNames(const FitOptions& options) {
  auto names = ObjectiveTermNames(options.weights);
  if (!options.refine) return names;
  if (names.size() == 2 && names.front() == "zero") names.erase(names.begin());
  names.pop_back();  // "total"
  for (const auto& t : kRefineTerms) {
    if (options.weights.*t.weight > 0) names.push_back(t.name);
  }
  if (names.empty()) names.push_back("zero");
  names.push_back("total");
  return names;
}

at::Tensor PoseFromProjection(const at::Tensor& projection) {
  auto M = projection.to(torch::kFloat64);
  auto m1 = M.select(1, 0).slice(1, 0, 3);
  auto m2 = M.select(1, 1).slice(1, 0, 3);
  auto n1 = m1.norm(2, 1, true), n2 = m2.norm(2, 1, true);
  auto scale = (n1 + n2).squeeze(1) / 2;
  auto r1 = m1 / n1.clamp_min(1e-12);
  auto r2 = -m2;  // back to y up
  r2 = r2 - (r2 * r1).sum(1, true) * r1;
  r2 = r2 / r2.norm(2, 1, true).clamp_min(1e-12);
  auto r3 = torch::cross(r1, r2, 1);
  // R = Rz(roll) Ry(yaw) Rx(pitch): R20 = -sin(yaw), R21 = cos(yaw) sin(pitch), R22 = cos(yaw) cos(pitch),
  // R10 = sin(roll) cos(yaw), R00 = cos(roll) cos(yaw).
  auto R00 = r1.select(1, 0), R10 = r2.select(1, 0), R20 = r3.select(1, 0);
  auto R21 = r3.select(1, 1), R22 = r3.select(1, 2);
  auto yaw = torch::atan2(-R20, torch::sqrt(R00 * R00 + R10 * R10));
  auto pitch = torch::atan2(R21, R22);
  auto roll = torch::atan2(R10, R00);
  auto t = M.select(2, 3);
  return torch::stack({yaw, pitch, roll, scale, t.select(1, 0), t.select(1, 1)}, 1).to(torch::kFloat32);
}

Fitter::Fitter(model::FaceModel model, FitOptions options) : model_(std::move(model)), options_(std::move(options)) {
  options_.Check();
  latents_ = ParseLatentSet(options_.optimise);
  stages_ = ParseSchedule(options_.schedule);
  model_.eval();
  for (auto& p : model_.parameters()) p.requires_grad_(false);
  if (options_.weights.perceptual > 0) {
    perceptual_ = std::make_shared<PerceptualLoss>(options_.weights.PerceptualOptions());
  }
}

namespace {

// Model landmarks [B, 73, 3]: the 68 iBUG vertices then the 5-point set.
at::Tensor ModelLandmarks(const render::FaceTopology& topo, const at::Tensor& vertices) {
  auto idx = topo.landmarks68.to(vertices.device());
  auto l68 = vertices.index_select(1, idx);
  auto eyes = render::EyeIndices68();
  auto mean_of = [&](const std::array<int, 6>& ids) {
    std::vector<int64_t> v(ids.begin(), ids.end());
    return l68.index_select(1, torch::tensor(v, torch::kInt64).to(vertices.device())).mean(1, true);
  };
  auto pick = [&](int i) { return l68.slice(1, i, i + 1); };
  auto l5 = torch::cat({mean_of(eyes[0]), mean_of(eyes[1]), pick(render::kNoseTip68), pick(render::kMouthLeft68),
                        pick(render::kMouthRight68)},
                       1);
  return torch::cat({l68, l5}, 1);
}

// The face region of eq. 4's robust variant (FitOptions::photometric_region):
// per image with all 68 iBUG points, the convex hull of the jaw line (0-16) and
// the brows (17-26) lifted by 0.3 x the brow-to-chin distance (the forehead);
// other images: 1 everywhere. [B, 1, S, S] float on `landmarks`' device.
at::Tensor FaceRegion(const at::Tensor& landmarks, const at::Tensor& weights, int S) {
  const int64_t B = landmarks.size(0);
  auto lm = landmarks.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto w = weights.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto out = torch::ones({B, 1, S, S}, torch::kFloat);
  auto L = lm.accessor<float, 3>();
  auto W = w.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    bool all = true;
    for (int k = 0; k < 68; ++k) all = all && W[b][k] > 0;
    if (!all) continue;
    cv::Point2f brow(0, 0);
    for (int k = 17; k <= 26; ++k) brow += cv::Point2f(L[b][k][0], L[b][k][1]) / 10.f;
    const cv::Point2f chin(L[b][8][0], L[b][8][1]);
    const cv::Point2f up = 0.3f * (brow - chin);
    std::vector<cv::Point2f> pts;
    for (int k = 0; k <= 16; ++k) pts.emplace_back(L[b][k][0], L[b][k][1]);
    for (int k = 17; k <= 26; ++k) pts.push_back(cv::Point2f(L[b][k][0], L[b][k][1]) + up);
    std::vector<cv::Point2f> hull;
    cv::convexHull(pts, hull);
    std::vector<cv::Point> ih;
    for (const auto& p : hull) ih.emplace_back(cvRound(p.x * 16), cvRound(p.y * 16));
    cv::Mat mask = cv::Mat::zeros(S, S, CV_8U);
    cv::fillConvexPoly(mask, ih, cv::Scalar(1), cv::LINE_8, 4);
    if (cv::countNonZero(mask) < 16) continue;  // degenerate landmarks: no restriction
    cv::Mat f;
    mask.convertTo(f, CV_32F);
    out[b][0].copy_(torch::from_blob(f.data, {S, S}, torch::kFloat));
  }
  return out.to(landmarks.device());
}

}  // namespace

FitResult Fitter::Fit(const at::Tensor& images, const at::Tensor& landmarks, const at::Tensor& weights,
                      std::function<bool()> interrupted) {
  return FitFrom(model::Encoding{}, images, landmarks, weights, std::move(interrupted));
}

FitResult Fitter::FitFrom(const model::Encoding& init, const at::Tensor& images_in, const at::Tensor& landmarks_in,
                          const at::Tensor& weights_in, std::function<bool()> interrupted) {
  const auto& cfg = model_.config();
  const int S = cfg.image_size;
  const auto device = model_.device();
  if (images_in.dim() != 4 || images_in.size(1) != 3 || images_in.size(2) != S || images_in.size(3) != S) {
    std::ostringstream got;
    got << images_in.sizes();
    throw Error(fmt::format("Fitter::Fit: images must be [B, 3, {}, {}], got {}", S, S, got.str()));
  }
  const int64_t B = images_in.size(0);
  if (landmarks_in.sizes().vec() != std::vector<int64_t>{B, kPackedLandmarks, 2} ||
      weights_in.sizes().vec() != std::vector<int64_t>{B, kPackedLandmarks}) {
    throw Error(fmt::format("Fitter::Fit: landmarks must be [B, {}, 2] and weights [B, {}]", kPackedLandmarks,
                            kPackedLandmarks));
  }
  auto images = images_in.to(device, torch::kFloat32);
  auto landmarks = landmarks_in.to(device, torch::kFloat32);
  auto lm_weights = weights_in.to(device, torch::kFloat32);
  torch::AutoGradMode grad_on(true);  // callers may be inside a NoGradGuard
  FitResult r;
  // A non-finite input image is replaced by zeros for the (shared) forward pass and recorded.
  r.finite_input = torch::isfinite(images).flatten(1).all(1).cpu();
  images = torch::where(torch::isfinite(images), images, torch::zeros_like(images));
  lm_weights = torch::where(torch::isfinite(landmarks).all(2), lm_weights, torch::zeros_like(lm_weights));
  landmarks = torch::nan_to_num(landmarks, 0.0, 0.0, 0.0);

  // Per-stage clocks (FitTiming); with synchronize_timing on CUDA, wait for the device first.
  const bool sync = options_.synchronize_timing && device.is_cuda();
  auto now = [&] {
    if (sync) torch::cuda::synchronize(device.index());
    return Clock::now();
  };
  auto t0 = now();
  model::Encoding enc = init;
  if (!enc.f_shape.defined()) {
    torch::NoGradGuard ng;
    enc = model_.Encode(images);
  } else {
    enc.f_shape = enc.f_shape.to(device, torch::kFloat32);
    enc.f_albedo = enc.f_albedo.to(device, torch::kFloat32);
    enc.projection = enc.projection.to(device, torch::kFloat32);
    enc.lighting = enc.lighting.to(device, torch::kFloat32);
  }
  timing_.encode += Since(now(), t0);
  auto leaf = [&](const at::Tensor& t) { return t.detach().clone(); };
  auto f_S = leaf(enc.f_shape);
  auto f_A = leaf(enc.f_albedo);
  auto M = leaf(enc.projection);
  auto L = leaf(enc.lighting);
  const std::vector<std::pair<unsigned, at::Tensor>> latents = {
      {kLatentShape, f_S}, {kLatentAlbedo, f_A}, {kLatentProjection, M}, {kLatentLighting, L}};
  // The leaves a stage optimises (requires_grad on exactly those).
  auto stage_params = [&](unsigned bits) {
    std::vector<at::Tensor> params;
    for (auto [bit, t] : latents) {
      const bool on = (bits & bit) != 0;
      t.requires_grad_(on);
      if (on) params.push_back(t);
    }
    return params;
  };

  const auto& topo = model_.face_template().topology;
  const auto& w = options_.weights;
  const unsigned pairings = w.PairingBits();
  const double lm_scale = w.landmark_scale * S / 224.0;
  // Photometric pixel weights: the face region (and, per stage, the inliers).
  const at::Tensor region = options_.photometric_region == "landmarks" ? FaceRegion(landmarks, lm_weights, S)
                                                                       : torch::ones({B, 1, S, S}, images.options());
  at::Tensor pixel_weights = region;
  double render_seconds = 0;  // of the current objective evaluation
  auto render_fn = [&](const at::Tensor& shape, const at::Tensor& albedo) {
    const auto tr = now();
    auto rr = render::Render(topo, render::VerticesFromUVMap(topo, shape), render::VerticesFromUVMap(topo, albedo),
                             M, L, S, S);
    const auto te = now();
    render_seconds += std::chrono::duration<double>(te - tr).count();
    return Rendering{rr.image, rr.mask.to(rr.image.scalar_type()) * pixel_weights};
  };
  // The proxy heads run only when a pairing renders a proxy (not with the default I(S, A)).
  const model::Heads heads = DecoderHeads(w);
  // A latent a stage holds fixed is decoded once for the stage.
  model::DecodedMaps held_shape, held_albedo;
  auto hold = [&] {
    torch::NoGradGuard g;
    held_shape = f_S.requires_grad() ? model::DecodedMaps{} : model_.DecodeShape(f_S, heads);
    held_albedo = f_A.requires_grad() ? model::DecodedMaps{} : model_.DecodeAlbedo(f_A, heads);
  };
  // The terms of S and M alone (landmark, shape prior) are constants while both are held
  // (stage 2): left out there.
  bool shape_terms = true;
  auto objective = [&]() {
    auto t1 = now();
    render_seconds = 0;
    LossTerms terms;
    auto shape = held_shape.value.defined() ? held_shape : model_.DecodeShape(f_S, heads);
    auto albedo = held_albedo.value.defined() ? held_albedo : model_.DecodeAlbedo(f_A, heads);
    const double decode_seconds = Since(now(), t1);
    if (w.photometric > 0) {
      // (Without proxies no pairing reads them: the true maps stand in for the checks.)
      const auto& shape_proxy = shape.proxy.defined() ? shape.proxy : shape.value;
      const auto& albedo_proxy = albedo.proxy.defined() ? albedo.proxy : albedo.value;
      auto rec = ReconstructionPairings(shape.value, shape_proxy, albedo.value, albedo_proxy, images, render_fn,
                                        pairings, perceptual_.get(), w.perceptual);
      // eq. 4 (+ lambda_f eq. 5 = eq. 6), summed over the pairings (eq. 15)
      terms.Add("photometric", w.photometric, rec.total);
    }
    if (w.landmark > 0 && shape_terms) {  // eq. 7
      auto verts = render::VerticesFromUVMap(topo, shape.value);
      auto projected = ProjectPoints(M, ModelLandmarks(topo, verts));
      terms.Add("landmark", w.landmark, LandmarkLoss(projected, landmarks, lm_weights, lm_scale));
    }
    if (w.latent_shape_prior > 0 && shape_terms) terms.Add("shape_prior", w.latent_shape_prior, LatentPriorLoss(f_S));
    if (w.latent_albedo_prior > 0) terms.Add("albedo_prior", w.latent_albedo_prior, LatentPriorLoss(f_A));
    if (terms.empty()) terms.Add("zero", 0.0, torch::zeros({B}, images.options()));
    const double total_seconds = Since(now(), t1);
    timing_.objective += total_seconds;
    timing_.decode += decode_seconds;
    timing_.render += render_seconds;
    timing_.losses += std::max(0.0, total_seconds - decode_seconds - render_seconds);
    ++timing_.objective_calls;
    return terms;
  };
  // Outlier rejection: the pixels whose residual under the current state exceeds
  // outlier_threshold x the image's median residual (over the region) leave the term.
  auto reject_outliers = [&](double threshold) {
    pixel_weights = region;
    if (threshold <= 0 || w.photometric <= 0) return;
    torch::NoGradGuard g;
    auto shape = held_shape.value.defined() ? held_shape.value : model_.DecodeShape(f_S, heads).value;
    auto albedo = held_albedo.value.defined() ? held_albedo.value : model_.DecodeAlbedo(f_A, heads).value;
    auto rr = render::Render(topo, render::VerticesFromUVMap(topo, shape), render::VerticesFromUVMap(topo, albedo),
                             M, L, S, S);
    auto residual = (rr.image - images).pow(2).sum(1, true).sqrt();  // [B, 1, S, S]
    auto valid = (rr.mask.to(residual.scalar_type()) * region) > 0;
    std::vector<float> tau(static_cast<size_t>(B), 1e30f);
    auto res_cpu = residual.cpu(), valid_cpu = valid.cpu();
    for (int64_t b = 0; b < B; ++b) {
      auto v = res_cpu[b].masked_select(valid_cpu[b]);
      if (v.numel() >= 16)
        tau[static_cast<size_t>(b)] = std::max(0.1f, static_cast<float>(threshold) * v.median().item<float>());
    }
    auto t = torch::tensor(tau, residual.options()).view({B, 1, 1, 1});
    pixel_weights = region * (residual <= t).to(region.scalar_type());
  };

  auto t2 = now();
  auto mopts = options_.Minimise();
  mopts.interrupted = interrupted;
  const bool optimise = options_.steps > 0;
  // The objective at the encoder's estimate (the summaries' initial terms).
  stage_params(0);
  hold();
  auto init_opts = mopts;
  init_opts.max_iterations = 0;
  auto dummy = torch::zeros({B, 1}, images.options()).requires_grad_(true);
  std::vector<FitSummary> initial = MinimiseBatch({dummy}, objective, init_opts);
  const model::DecodedMaps initial_shape = held_shape;  // f_S at the encoder's estimate (stage 1)
  held_shape = held_albedo = {};
  r.summaries = initial;
  std::vector<int> iterations(static_cast<size_t>(B), 0);
  auto run_stage = [&](unsigned bits, const MinimiseOptions& opts) {
    auto params = stage_params(bits);
    if (params.empty() || opts.max_iterations == 0) return;
    hold();
    reject_outliers(options_.outlier_threshold);
    r.summaries = MinimiseBatch(params, objective, opts);
    for (int64_t b = 0; b < B; ++b) iterations[static_cast<size_t>(b)] += r.summaries[static_cast<size_t>(b)].iterations;
    int most = 0;
    for (const auto& s : r.summaries) most = std::max(most, s.iterations);
    timing_.iterations += most;
    if (!r.summaries.empty()) timing_.backward += r.summaries.front().backward_seconds;  // batch-wide
    held_shape = held_albedo = {};
  };
  if (optimise) {
    // Stage 1: pose in closed form from the landmarks (eq. 7's least squares).
    if ((stages_ & kStagePose) && (latents_ & kLatentProjection)) {
      torch::NoGradGuard g;
      auto verts = render::VerticesFromUVMap(topo, initial_shape.value);
      M.copy_(EstimateWeakPerspective(ModelLandmarks(topo, verts), landmarks, lm_weights, M));
    }
    // Stage 2: lighting and albedo with shape and pose held.
    auto appearance = mopts;
    appearance.max_iterations = options_.appearance_steps;
    appearance.optimiser.step_size = options_.appearance_step_size;
    shape_terms = false;
    if (stages_ & kStageAppearance) run_stage(latents_ & (kLatentAlbedo | kLatentLighting), appearance);
    shape_terms = true;
    // Stage 3 (or the only stage of "joint"): every latent asked for.
    if (stages_ & kStageJoint) run_stage(latents_, mopts);
  }
  stage_params(0);

  // Stage 4 (opt-in): the residual maps of eq. 14 as free per-pixel unknowns, the proxies,
  // M and L held (FitOptions::refine).
  model::DecodedMaps refined_shape, refined_albedo;
  if (optimise && options_.refine && options_.refine_steps > 0) {
    const auto tr = now();
    model::DecodedMaps shape0, albedo0;
    {
      torch::NoGradGuard g;
      shape0 = model_.DecodeShape(f_S);
      albedo0 = model_.DecodeAlbedo(f_A);
    }
    auto dS = shape0.residual().detach().clone().requires_grad_(true);
    auto dA = albedo0.residual().detach().clone().requires_grad_(true);
    const at::Tensor S_proxy = shape0.proxy.detach(), A_proxy = albedo0.proxy.detach();
    const at::Tensor mask = topo.mask.to(device);
    // Constant across the stage: the input unwrapped through M onto the fitted shape
    // (eq. 9's chromaticity), its visibility (eq. 16's T), and the latent priors.
    render::UnwrapResult unwrapped;
    {
      torch::NoGradGuard g;
      unwrapped = render::UnwrapTexture(topo, images, render::VerticesFromUVMap(topo, shape0.value), M);
    }
    at::Tensor shape_prior, albedo_prior;
    if (w.latent_shape_prior > 0) shape_prior = LatentPriorLoss(f_S).per_image.detach();
    if (w.latent_albedo_prior > 0) albedo_prior = LatentPriorLoss(f_A).per_image.detach();
    auto refine_objective = [&]() {
      auto t1 = now();
      render_seconds = 0;
      LossTerms terms;
      auto shape = S_proxy + dS;
      auto albedo = A_proxy + dA;
      if (w.photometric > 0) {
        auto rec = ReconstructionPairings(shape, S_proxy, albedo, A_proxy, images, render_fn, pairings,
                                          perceptual_.get(), w.perceptual);
        terms.Add("photometric", w.photometric, rec.total);
      }
      // Eq. 7 is recorded, not minimised (weight 0): with a free residual per vertex it would pull
      // the 68 landmark vertices alone onto the (noisy) annotations; the latent stages placed them.
      if (w.landmark > 0) {
        auto verts = render::VerticesFromUVMap(topo, shape.detach());
        terms.Add("landmark", 0.0,
                  LandmarkLoss(ProjectPoints(M, ModelLandmarks(topo, verts)), landmarks, lm_weights, lm_scale));
      }
      if (shape_prior.defined()) terms.Add("shape_prior", w.latent_shape_prior, LossResult{shape_prior, shape_prior.mean()});
      if (albedo_prior.defined())
        terms.Add("albedo_prior", w.latent_albedo_prior, LossResult{albedo_prior, albedo_prior.mean()});
      if (w.albedo_symmetry > 0) terms.Add("albedo_symmetry", w.albedo_symmetry, AlbedoSymmetryLoss(dA, mask));  // eq. 8
      if (w.albedo_constancy > 0)  // eq. 9
        terms.Add("albedo_constancy", w.albedo_constancy,
                  AlbedoConstancyLoss(dA, unwrapped.uv_color, unwrapped.uv_visibility, mask, w.constancy_alpha,
                                      w.constancy_p));
      // Eqs. 8-10 regularise the residual maps here (as eq. 13 does the proxies in training): on S
      // and A themselves they would pull the held proxies' own structure (the nose, the lips) flat.
      if (w.shape_smoothness > 0) terms.Add("shape_smoothness", w.shape_smoothness, ShapeSmoothnessLoss(dS, mask));
      if (w.residual_shape > 0)  // eq. 14
        terms.Add("residual_shape", w.residual_shape, ResidualMagnitudeLoss(shape, S_proxy, mask));
      if (w.residual_albedo > 0)
        terms.Add("residual_albedo", w.residual_albedo, ResidualMagnitudeLoss(albedo, A_proxy, mask));
      if (w.residual_symmetry > 0)  // eq. 16
        terms.Add("residual_symmetry", w.residual_symmetry,
                  ResidualSymmetryLoss(shape, S_proxy, unwrapped.uv_visibility, mask, w.SymmetryMask()));
      if (terms.empty()) terms.Add("zero", 0.0, torch::zeros({B}, images.options()));
      const double total_seconds = Since(now(), t1);
      timing_.objective += total_seconds;
      timing_.render += render_seconds;
      timing_.losses += std::max(0.0, total_seconds - render_seconds);
      ++timing_.objective_calls;
      return terms;
    };
    held_shape = shape0, held_albedo = albedo0;  // the outlier test at the fitted state
    reject_outliers(options_.refine_outlier_threshold);
    held_shape = held_albedo = {};
    auto refine = mopts;
    refine.max_iterations = options_.refine_steps;
    refine.optimiser.step_size = options_.refine_step_size;
    r.summaries = MinimiseBatch({dS, dA}, refine_objective, refine);
    int most = 0;
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = r.summaries[static_cast<size_t>(b)];
      iterations[static_cast<size_t>(b)] += s.iterations;
      most = std::max(most, s.iterations);
    }
    timing_.iterations += most;
    if (!r.summaries.empty()) timing_.backward += r.summaries.front().backward_seconds;
    torch::NoGradGuard g;
    refined_shape = model::DecodedMaps{S_proxy + dS.detach(), S_proxy};
    refined_albedo = model::DecodedMaps{A_proxy + dA.detach(), A_proxy};
    timing_.refine += Since(now(), tr);
  }
  pixel_weights = region;
  // One summary per image across the stages: initial terms at the encoder's estimate.
  for (int64_t b = 0; b < B; ++b) {
    auto& s = r.summaries[static_cast<size_t>(b)];
    const auto& i0 = initial[static_cast<size_t>(b)];
    s.initial_terms = i0.initial_terms;
    s.initial_loss = i0.initial_loss;
    s.iterations = iterations[static_cast<size_t>(b)];
  }
  const double seconds = Since(t0);
  for (auto& s : r.summaries) s.seconds = seconds;
  timing_.optimise += Since(now(), t2);
  r.term_names = FitTermNames(options_);

  auto t3 = now();
  torch::NoGradGuard ng;
  r.f_shape = f_S.detach();
  r.f_albedo = f_A.detach();
  r.projection = M.detach();
  r.lighting = L.detach();
  r.shape = refined_shape.value.defined() ? refined_shape : model_.DecodeShape(r.f_shape);
  r.albedo = refined_albedo.value.defined() ? refined_albedo : model_.DecodeAlbedo(r.f_albedo);
  r.shape_vertices = render::VerticesFromUVMap(topo, r.shape.value);
  auto albedo_vertices = render::VerticesFromUVMap(topo, r.albedo.value);
  auto rr = render::Render(topo, r.shape_vertices, albedo_vertices, r.projection, r.lighting, S, S);
  r.screen_vertices = rr.screen;
  r.photometric = ImageL21(rr.image, images, rr.mask).per_image.cpu();
  auto projected = ProjectPoints(r.projection, ModelLandmarks(topo, r.shape_vertices));
  auto dist = (projected - landmarks).norm(2, 2);
  auto wsum = lm_weights.sum(1);
  r.landmark_error = torch::where(wsum > 0, (dist * lm_weights).sum(1) / wsum.clamp_min(1e-12),
                                  torch::full_like(wsum, std::nan("")))
                         .cpu();
  timing_.finish += Since(now(), t3);
  return r;
}

}  // namespace facebatch::fit
