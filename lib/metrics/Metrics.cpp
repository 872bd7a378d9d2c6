// The paper's metrics (section 4); see Metrics.h.
#include "metrics/Metrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/Error.h"
#include "fit/Losses.h"

namespace facebatch::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void CheckDims(const char* fn, const char* arg, const at::Tensor& t, std::vector<int64_t> dims) {
  if (!t.defined()) throw Error(std::string("metrics::") + fn + ": " + arg + " is undefined");
  bool ok = t.dim() == static_cast<int64_t>(dims.size());
  for (size_t i = 0; ok && i < dims.size(); ++i) ok = dims[i] < 0 || t.size(static_cast<int64_t>(i)) == dims[i];
  if (!ok) {
    std::string want = "[";
    for (size_t i = 0; i < dims.size(); ++i) want += (i ? ", " : "") + (dims[i] < 0 ? std::string("*") : std::to_string(dims[i]));
    throw Error(std::string("metrics::") + fn + ": " + arg + " must be " + want + "], got " + c10::str(t.sizes()));
  }
}

at::Tensor Cpu64(const at::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat64); }

/// Euclidean norm over the last dimension.
at::Tensor Norm(const at::Tensor& t) { return t.pow(2).sum(-1).sqrt(); }

/// 0/1 float64 weights [B, K] (all ones when undefined).
at::Tensor WeightsOrOnes(const char* fn, const at::Tensor& weights, int64_t B, int64_t K) {
  if (!weights.defined()) return torch::ones({B, K}, torch::kFloat64);
  CheckDims(fn, "weights", weights, {B, K});
  return (Cpu64(weights) > 0).to(torch::kFloat64);
}

}  // namespace

at::Tensor L21Error(const at::Tensor& rendered, const at::Tensor& input, const at::Tensor& mask) {
  torch::NoGradGuard no_grad;
  CheckDims("L21Error", "rendered", rendered, {-1, 3, -1, -1});
  CheckDims("L21Error", "mask", mask, {rendered.size(0), 1, rendered.size(2), rendered.size(3)});
  const auto r = Cpu64(rendered);
  const auto per_image = fit::ImageL21(r, Cpu64(input), Cpu64(mask) > 0).per_image;  // eq. 4 on sRGB values
  const auto covered = (Cpu64(mask) > 0).flatten(1).any(1);
  return torch::where(covered, per_image, torch::full_like(per_image, kNaN));
}

const char* NmeNormalisationName(NmeNormalisation n) {
  return n == NmeNormalisation::kInterOcular ? "interocular" : "bbox";
}

at::Tensor LandmarkNormaliser(const at::Tensor& ground_truth, NmeNormalisation normalisation, const at::Tensor& weights) {
  CheckDims("LandmarkNormaliser", "ground_truth", ground_truth, {-1, -1, 2});
  const auto g = Cpu64(ground_truth);
  const int64_t B = g.size(0), K = g.size(1);
  if (normalisation == NmeNormalisation::kInterOcular) {
    if (K != 68) throw Error("metrics::LandmarkNormaliser: the inter-ocular distance needs 68 iBUG points, got " + std::to_string(K));
    return Norm(g.select(1, kOuterEyeLeft68) - g.select(1, kOuterEyeRight68));
  }
  const auto w = WeightsOrOnes("LandmarkNormaliser", weights, B, K) > 0;  // [B, K] bool
  const double inf = std::numeric_limits<double>::infinity();
  const auto wk = w.unsqueeze(-1).expand({B, K, 2});
  const auto lo = torch::where(wk, g, torch::full_like(g, inf)).amin(1);   // [B, 2]
  const auto hi = torch::where(wk, g, torch::full_like(g, -inf)).amax(1);  // [B, 2]
  const auto extent = hi - lo;
  auto size = (extent.select(1, 0) * extent.select(1, 1)).sqrt();
  return torch::where(w.any(1), size, torch::full_like(size, kNaN));
}

at::Tensor LandmarkNme(const at::Tensor& predicted, const at::Tensor& ground_truth, NmeNormalisation normalisation,
                       const at::Tensor& weights) {
  CheckDims("LandmarkNme", "ground_truth", ground_truth, {-1, -1, 2});
  CheckDims("LandmarkNme", "predicted", predicted, {ground_truth.size(0), ground_truth.size(1), 2});
  const auto p = Cpu64(predicted), g = Cpu64(ground_truth);
  const auto w = WeightsOrOnes("LandmarkNme", weights, g.size(0), g.size(1));
  const auto dist = Norm(p - g);  // [B, K]
  const auto wsum = w.sum(1);
  const auto mean = (dist * w).sum(1) / wsum.clamp_min(1);
  const auto norm = LandmarkNormaliser(g, normalisation, weights);
  const auto ok = (wsum > 0) & (norm > 0) & torch::isfinite(norm);
  return torch::where(ok, mean / norm.clamp_min(1e-300), torch::full_like(mean, kNaN));
}

const char* ShapeAlignmentName(ShapeAlignment a) { return a == ShapeAlignment::kNone ? "none" : "similarity"; }

ShapeAlignment ParseShapeAlignment(const std::string& text) {
  if (text == "none") return ShapeAlignment::kNone;
  if (text == "similarity") return ShapeAlignment::kSimilarity;
  throw UsageError("unknown shape alignment '" + text + "' (expected none or similarity)");
}

at::Tensor Similarity::Apply(const at::Tensor& points) const {
  return scale.view({-1, 1, 1}) * Cpu64(points).matmul(rotation.transpose(1, 2)) + translation.unsqueeze(1);
}

Similarity EstimateSimilarity(const at::Tensor& source, const at::Tensor& target, const at::Tensor& weights) {
  CheckDims("EstimateSimilarity", "target", target, {-1, -1, 3});
  CheckDims("EstimateSimilarity", "source", source, {target.size(0), target.size(1), 3});
  const auto P = Cpu64(source), G = Cpu64(target);
  const int64_t B = P.size(0), N = P.size(1);
  const auto w = WeightsOrOnes("EstimateSimilarity", weights, B, N).unsqueeze(-1);  // [B, N, 1]
  const auto wsum = w.sum(1, true).clamp_min(1);                                      // [B, 1, 1]
  const auto mp = (P * w).sum(1, true) / wsum, mg = (G * w).sum(1, true) / wsum;     // [B, 1, 3]
  const auto Pc = P - mp, Gc = G - mg;
  // Umeyama: Sigma = (1/n) sum w g p^T = U D V^T; R = U diag(1, 1, sign(det U det V)) V^T;
  // s = trace(D diag(...)) / var(p); t = mg - s R mp.
  const auto sigma = (Gc * w).transpose(1, 2).matmul(Pc) / wsum;  // [B, 3, 3]
  auto [U, D, Vh] = at::linalg_svd(sigma, /*full_matrices=*/false);
  const auto sign = torch::sign(at::linalg_det(U) * at::linalg_det(Vh));
  auto diag = torch::ones({B, 3}, torch::kFloat64);
  diag.select(1, 2).copy_(torch::where(sign < 0, -torch::ones_like(sign), torch::ones_like(sign)));
  Similarity out;
  out.rotation = U.matmul(torch::diag_embed(diag)).matmul(Vh);                      // [B, 3, 3]
  const auto var_p = ((Pc * Pc).sum(-1, true) * w).sum(1, true) / wsum;            // [B, 1, 1]
  out.scale = (D * diag).sum(1) / var_p.view({B}).clamp_min(1e-300);
  out.translation = (mg - out.scale.view({B, 1, 1}) * mp.matmul(out.rotation.transpose(1, 2))).squeeze(1);
  return out;
}

at::Tensor SimilarityAlign(const at::Tensor& source, const at::Tensor& target, const at::Tensor& weights) {
  return EstimateSimilarity(source, target, weights).Apply(source);
}

at::Tensor ShapeSpread(const at::Tensor& shapes, const at::Tensor& reference) {
  CheckDims("ShapeSpread", "reference", reference, {-1, 3});
  CheckDims("ShapeSpread", "shapes", shapes, {-1, reference.size(0), 3});
  const int64_t B = shapes.size(0);
  const auto aligned = SimilarityAlign(shapes, Cpu64(reference).unsqueeze(0).expand({B, -1, -1}));
  return Norm(aligned - aligned.mean(0, true)).mean(1);
}

SpreadRatio ShapeSpreadRatio(const at::Tensor& recovered, const at::Tensor& ground_truth, const at::Tensor& reference) {
  CheckDims("ShapeSpreadRatio", "ground_truth", ground_truth, {-1, -1, 3});
  CheckDims("ShapeSpreadRatio", "recovered", recovered, {ground_truth.size(0), ground_truth.size(1), 3});
  SpreadRatio r{kNaN, kNaN};
  if (ground_truth.size(0) < 2) return r;
  const auto a = ShapeSpread(recovered, reference), b = ShapeSpread(ground_truth, reference);
  const double rms_b = b.pow(2).mean().sqrt().item<double>(), med_b = b.median().item<double>();
  if (rms_b > 0) r.rms = a.pow(2).mean().sqrt().item<double>() / rms_b;
  if (med_b > 0) r.median = a.median().item<double>() / med_b;
  return r;
}

at::Tensor ShapeNme(const at::Tensor& recovered, const at::Tensor& ground_truth, const at::Tensor& landmarks68,
                    ShapeAlignment alignment, const at::Tensor& weights) {
  CheckDims("ShapeNme", "ground_truth", ground_truth, {-1, -1, 3});
  CheckDims("ShapeNme", "recovered", recovered, {ground_truth.size(0), ground_truth.size(1), 3});
  CheckDims("ShapeNme", "landmarks68", landmarks68, {68});
  const auto G = Cpu64(ground_truth);
  const int64_t B = G.size(0), N = G.size(1);
  const auto w = WeightsOrOnes("ShapeNme", weights, B, N);
  const auto P = alignment == ShapeAlignment::kSimilarity ? SimilarityAlign(recovered, G, weights) : Cpu64(recovered);
  const auto lm = landmarks68.to(torch::kCPU, torch::kLong);
  const int64_t a = lm[kOuterEyeLeft68].item<int64_t>(), b = lm[kOuterEyeRight68].item<int64_t>();
  if (a < 0 || a >= N || b < 0 || b >= N)
    throw Error("metrics::ShapeNme: eye-corner landmark vertex ids out of range [0, " + std::to_string(N) + ")");
  const auto iod = Norm(G.select(1, a) - G.select(1, b));  // [B]
  const auto wsum = w.sum(1);
  const auto mean = (Norm(P - G) * w).sum(1) / wsum.clamp_min(1);
  const auto ok = (wsum > 0) & (iod > 0) & torch::isfinite(mean);
  return torch::where(ok, mean / iod.clamp_min(1e-300), torch::full_like(mean, kNaN));
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double pos = std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

Stats Summarise(const std::vector<double>& values) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  std::sort(v.begin(), v.end());
  Stats s;
  s.count = static_cast<int64_t>(v.size());
  if (v.empty()) {
    s.mean = s.median = s.p90 = s.p95 = s.min = s.max = kNaN;
    return s;
  }
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  s.median = Percentile(v, 50);
  s.p90 = Percentile(v, 90);
  s.p95 = Percentile(v, 95);
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace facebatch::metrics
