#include "train/Trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "fit/Losses.h"
#include "model/FaceModel.h"
#include "render/Render.h"
#include "render/Template.h"
#include "train/LatentTargets.h"

namespace facebatch::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointFormat = "facebatch-train-checkpoint";
constexpr int kCheckpointVersion = 1;

bool HasProxy(const model::FaceModel& m) {
  return m.config().kind == model::ModelKind::kNonlinear && m.config().proxy;
}

// Mean over a [B, ...] tensor's non-batch dimensions.
at::Tensor PerImageMean(const at::Tensor& x) { return x.flatten(1).mean(1); }

// A csv row for the fixed columns.
std::string CsvRow(int64_t step, Phase phase, double lr, const std::map<std::string, double>& values,
                   double grad_norm, double seconds) {
  std::ostringstream os;
  os.precision(9);
  os << step << ',' << PhaseName(phase) << ',' << lr << ',';
  auto put = [&](const std::string& name) {
    auto it = values.find(name);
    if (it != values.end()) os << it->second;
  };
  put("total");
  for (const auto& n : TermNames()) os << ',', put(n);
  os << ',';
  put("metric_l21");
  os << ',';
  put("metric_shape_l1");
  os << ',';
  if (grad_norm >= 0) os << grad_norm;
  os << ',' << seconds << '\n';
  return os.str();
}

double LearningRate(const TrainOptions& o, int64_t step) {
  if (o.lr_schedule == "constant") return o.lr;
  if (o.lr_schedule == "cosine") {
    const double t = std::min(1.0, static_cast<double>(step) / std::max<int64_t>(1, o.steps));
    return o.lr * 0.5 * (1.0 + std::cos(M_PI * t));
  }
  const int64_t every = o.lr_decay_steps > 0 ? o.lr_decay_steps : std::max<int64_t>(1, o.steps / 3);
  return o.lr * std::pow(o.lr_decay, static_cast<double>(step / every));
}

Batch ToDevice(const Batch& b, c10::Device d) {
  Batch out = b;
  out.images = b.images.to(d), out.landmarks = b.landmarks.to(d), out.has_ground_truth = b.has_ground_truth.to(d);
  out.shape_uv = b.shape_uv.to(d), out.albedo_uv = b.albedo_uv.to(d), out.M = b.M.to(d), out.L = b.L.to(d);
  if (b.code_shape.defined()) out.code_shape = b.code_shape.to(d), out.code_albedo = b.code_albedo.to(d);
  return out;
}

// Keeps the lines of a csv whose step (first column) is below `step` (resume).
void TruncateCsv(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || (!line.empty() && std::stoll(line.substr(0, line.find(','))) < step)) kept += line + "\n";
    header = false;
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

std::map<std::string, double> Accumulate(const std::vector<std::map<std::string, double>>& rows) {
  std::map<std::string, double> sum;
  std::map<std::string, int> count;
  for (const auto& r : rows)
    for (const auto& [k, v] : r) sum[k] += v, count[k]++;
  for (auto& [k, v] : sum) v /= count[k];
  return sum;
}

}  // namespace

void PretrainWeights::Check() const {
  const std::initializer_list<std::pair<const char*, double>> weights = {
      {"projection", projection}, {"lighting", lighting}, {"shape", shape}, {"albedo", albedo},
      {"latent_shape", latent_shape}, {"latent_albedo", latent_albedo}};
  for (const auto& [name, v] : weights)
    if (!(v >= 0) || !std::isfinite(v))
      throw UsageError(std::string("--pretrain.") + name + " must be a finite weight >= 0");
}

void TrainOptions::Check() const {
  if (manifest.empty()) throw UsageError("train: --manifest is required");
  if (model_in.empty() == preset.empty()) throw UsageError("train: give exactly one of --model-in and --preset");
  if (!model_in.empty() && (!ablation.empty() || !kind.empty()))
    throw UsageError("train: --ablation and --kind apply to --preset only");
  if (out.empty()) throw UsageError("train: --out is required");
  if (steps < 0) throw UsageError("train: --steps must be >= 0");
  if (stop_at < 0) throw UsageError("train: --stop-at must be >= 0");
  if (pretrain_steps < 0) throw UsageError("train: --pretrain-steps must be >= 0");
  if (batch < 1) throw UsageError("train: --batch must be >= 1");
  if (!(lr > 0) || !std::isfinite(lr)) throw UsageError("train: --lr must be > 0");
  if (lr_schedule != "constant" && lr_schedule != "step" && lr_schedule != "cosine")
    throw UsageError("train: --lr-schedule must be constant, step or cosine");
  if (!(lr_decay > 0 && lr_decay <= 1)) throw UsageError("train: --lr-decay must be in (0, 1]");
  if (lr_decay_steps < 0) throw UsageError("train: --lr-decay-steps must be >= 0");
  if (!(clip_grad_norm >= 0)) throw UsageError("train: --clip-grad-norm must be >= 0");
  if (!(val_fraction >= 0 && val_fraction < 1)) throw UsageError("train: --val-fraction must be in [0, 1)");
  if (threads < 0 || loader_threads < 1 || prefetch < 1)
    throw UsageError("train: --threads >= 0, --loader-threads >= 1 and --prefetch >= 1 are required");
  if (checkpoint_every < 1 || val_every < 0 || val_batches < 0 || log_every < 1)
    throw UsageError("train: --checkpoint-every >= 1, --val-every >= 0, --val-batches >= 0, --log-every >= 1");
  try {
    (void)c10::Device(device);
  } catch (const std::exception&) {
    throw UsageError("train: --device must be cpu, cuda or cuda:N (got '" + device + "')");
  }
  if (shape_targets != "similarity" && shape_targets != "raw")
    throw UsageError("train: --shape-targets must be similarity or raw");
  if (latent_target_items < 0) throw UsageError("train: --latent-target-items must be >= 0");
  if (train_parts != "all" && train_parts != "encoder" && train_parts != "decoders")
    throw UsageError("train: --train-parts must be all, encoder or decoders");
  if (DecodersOnly() && steps != pretrain_steps)
    throw UsageError("train: --train-parts decoders trains code -> map in pre-training only: --steps must equal "
                     "--pretrain-steps");
  if (DecodersOnly() && !pretrain.teacher_forcing)
    throw UsageError("train: --train-parts decoders decodes the latent targets: --pretrain.teacher_forcing must be true");
  if (DecodersOnly() && !(pretrain.shape > 0 || pretrain.albedo > 0))
    throw UsageError("train: --train-parts decoders needs --pretrain.shape or --pretrain.albedo above 0");
  loss.Check("loss");
  pretrain.Check();
  augment.Check();
}

const char* PhaseName(Phase phase) { return phase == Phase::kPretrain ? "pretrain" : "full"; }

const std::vector<std::string>& TermNames() {
  static const std::vector<std::string> names = {
      "landmark",         "gt_projection",    "gt_lighting",      "gt_shape",           "gt_albedo",
      "gt_latent_shape",  "gt_latent_albedo",
      "rec_proxy-proxy",  "rec_proxy-true",   "rec_true-proxy",   "rec_true-true",      "albedo_symmetry",
      "albedo_constancy", "shape_smoothness", "residual_shape",   "residual_albedo",    "residual_symmetry",
      "latent_shape_prior", "latent_albedo_prior"};
  return names;
}

std::string CsvHeader() {
  std::string h = "step,phase,lr,total";
  for (const auto& n : TermNames()) h += "," + n;
  return h + ",metric_l21,metric_shape_l1,grad_norm,seconds";
}

namespace {

// Eq. 7's landmark positions: the 68 landmark vertices of a mesh's `vertices` [B, N, 3]
// projected by M [B, 2, 4]; five-point corpora (CelebA) get eye centres, nose tip and
// mouth corners. Returns [B, count, 2].
at::Tensor ProjectedLandmarks(const render::FaceTopology& topo, const at::Tensor& vertices, const at::Tensor& M,
                              int64_t count) {
  at::Tensor lm3d = vertices.index_select(1, topo.landmarks68.to(vertices.device()));
  at::Tensor projected = fit::ProjectPoints(M, lm3d);  // [B, 68, 2]
  if (count != 5) return projected;
  std::vector<at::Tensor> five;
  for (const auto& eye : render::EyeIndices68()) {
    std::vector<int64_t> idx(eye.begin(), eye.end());
    five.push_back(projected.index_select(1, torch::tensor(idx).to(projected.device())).mean(1));
  }
  five.push_back(projected.select(1, 30)), five.push_back(projected.select(1, 48)), five.push_back(projected.select(1, 54));
  return torch::stack(five, 1);
}

// The encoder's supervised terms (pre-training): M, L and the latent targets, each
// counted only for items with ground truth, scaled by `phase_weight`.
void AddEncoderTerms(fit::LossTerms& terms, const model::FaceModel& model, const model::Encoding& enc,
                     const Batch& batch, const TrainOptions& o, double phase_weight) {
  const auto& n = model.normalisation();
  const at::Tensor has_gt = batch.has_ground_truth.to(batch.images.scalar_type());
  auto add = [&](const std::string& name, double w, const at::Tensor& per_image) {
    if (w > 0) terms.Add(name, w * phase_weight, per_image * has_gt);
  };
  add("gt_projection", o.pretrain.projection, PerImageMean(((enc.projection - batch.M).flatten(1) / n.m_std).pow(2)));
  add("gt_lighting", o.pretrain.lighting, PerImageMean(((enc.lighting - batch.L) / n.l_std).pow(2)));
  if (batch.code_shape.defined()) {
    add("gt_latent_shape", o.pretrain.latent_shape, PerImageMean((enc.f_shape - batch.code_shape).pow(2)));
    add("gt_latent_albedo", o.pretrain.latent_albedo, PerImageMean((enc.f_albedo - batch.code_albedo).pow(2)));
  }
}

// Pre-training of the encoder alone (--train-parts encoder): the decoders do not run.
// The encoder regresses the latent targets, M and L, and eq. 7 projects the landmarks
// of the ground-truth shape by its M (for an item without ground truth, of the shape
// decoded from its own f_S, without gradient: only M learns from it).
fit::LossTerms EncoderPretrainObjective(const model::FaceModel& model, const Batch& batch, const TrainOptions& o) {
  const auto& topo = model.face_template().topology;
  fit::LossTerms terms;
  model::Encoding enc = model.Encode(batch.images);
  at::Tensor shape = batch.shape_uv;
  {
    torch::NoGradGuard no_grad;
    const at::Tensor g = batch.has_ground_truth.to(batch.images.scalar_type()).view({-1, 1, 1, 1});
    if (g.min().item<double>() < 1)
      shape = g * batch.shape_uv + (1 - g) * model.DecodeShape(enc.f_shape.detach(), model::Heads::kTrueOnly).value;
  }
  if (o.loss.landmark > 0)
    terms.Add("landmark", o.loss.landmark,
              fit::LandmarkLoss(ProjectedLandmarks(topo, render::VerticesFromUVMap(topo, shape), enc.projection, batch.landmarks.size(1)),
                                batch.landmarks, {}, o.loss.landmark_scale));
  AddEncoderTerms(terms, model, enc, batch, o, 1.0);
  return terms;
}

// The map terms of pre-training, per image: masked l1 of the decoded map against the
// ground truth, averaged with that of the proxy when the model has one (S, S~ against the
// GT shape; A, A~ against the GT albedo).
at::Tensor MapErrorPerImage(const model::DecodedMaps& decoded, const at::Tensor& gt, const at::Tensor& mask,
                            bool proxy) {
  auto e = fit::ResidualMagnitudeLoss(decoded.value, gt, mask).per_image;
  if (proxy) e = 0.5 * (e + fit::ResidualMagnitudeLoss(decoded.proxy, gt, mask).per_image);
  return e;
}

// Pre-training of the decoders alone (--train-parts decoders): the encoder does not run.
// D_S and D_A decode the items' latent targets (teacher forcing) and learn code -> map
// from the ground-truth maps: the map terms of pre-training (masked l1 of S, S~ against
// the GT shape, of A, A~ against the GT albedo), counted only for items with ground truth.
fit::LossTerms DecoderPretrainObjective(const model::FaceModel& model, const Batch& batch, const TrainOptions& o) {
  if (!batch.code_shape.defined())
    throw UsageError("train: --train-parts decoders needs latent targets (ground truth in the manifest, and "
                     "--latent-targets DIR or --latent-target-items > 0)");
  const auto mask = model.face_template().topology.mask;
  const bool proxy = HasProxy(model);
  const at::Tensor has_gt = batch.has_ground_truth.to(batch.shape_uv.scalar_type());
  fit::LossTerms terms;
  auto map_term = [&](const std::string& name, double w, const model::DecodedMaps& decoded, const at::Tensor& gt) {
    if (w > 0) terms.Add(name, w, MapErrorPerImage(decoded, gt, mask, proxy) * has_gt);
  };
  if (o.pretrain.shape > 0) map_term("gt_shape", o.pretrain.shape, model.DecodeShape(batch.code_shape), batch.shape_uv);
  if (o.pretrain.albedo > 0)
    map_term("gt_albedo", o.pretrain.albedo, model.DecodeAlbedo(batch.code_albedo), batch.albedo_uv);
  return terms;
}

}  // namespace

void CheckTargetsMatchTheDecoders(model::FaceModel& model, const Dataset& dataset, const LatentTargets& targets,
                                  uint64_t seed) {
  auto [shapes, albedos] = GroundTruthMaps(dataset, 64, seed ^ 0xc4ec4ull);
  if (shapes.dim() != 4) return;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const auto device = model.device();
  shapes = shapes.to(device);
  const auto mask = model.face_template().topology.mask;
  const auto decoded = model.DecodeShape(targets.Codes(shapes), model::Heads::kTrueOnly).value;
  const double error = fit::ResidualMagnitudeLoss(decoded, shapes, mask).per_image.mean().item<double>();
  const double mean_face =
      fit::ResidualMagnitudeLoss(model.face_template().mean_shape.unsqueeze(0).expand_as(shapes), shapes, mask)
          .per_image.mean()
          .item<double>();
  model.train(was_training);
  log::Info("train: the frozen shape decoder maps the latent targets to the ground truth within {:.4f} cm "
            "(the mean face: {:.4f} cm; {} items)",
            error, mean_face, shapes.size(0));
  if (!(error < 0.8 * mean_face))
    throw UsageError("train: --train-parts encoder or decoders: the decoder does not reproduce the ground truth from the latent "
                     "targets (" + std::to_string(error) + " cm against the mean face's " + std::to_string(mean_face) +
                     "): the targets are not the ones this model's decoders learned (see --latent-targets)");
}

fit::LossTerms ComputeObjective(const model::FaceModel& model, const Batch& batch, Phase phase,
                                const TrainOptions& o, const fit::PerceptualLoss* perceptual, bool metrics) {
  if (phase == Phase::kPretrain && o.EncoderOnly() && !metrics) return EncoderPretrainObjective(model, batch, o);
  if (phase == Phase::kPretrain && o.DecodersOnly() && !metrics) return DecoderPretrainObjective(model, batch, o);
  const auto& W = o.loss;
  const auto& topo = model.face_template().topology;
  const auto mask = topo.mask;
  const int64_t H = batch.images.size(2), Wd = batch.images.size(3);
  fit::LossTerms terms;

  model::Encoding enc = model.Encode(batch.images);
  const bool proxy = HasProxy(model);
  const at::Tensor has_gt = batch.has_ground_truth.to(batch.images.scalar_type());
  // Teacher forcing (train/LatentTargets.h): in pre-training an item with ground
  // truth is decoded from its target code; validation (metrics) decodes the encoder's.
  at::Tensor f_S = enc.f_shape, f_A = enc.f_albedo;
  const bool codes = batch.code_shape.defined();
  if (phase == Phase::kPretrain && codes && o.pretrain.teacher_forcing && !metrics) {
    const auto g = has_gt.unsqueeze(1);
    f_S = g * batch.code_shape + (1 - g) * enc.f_shape;
    f_A = g * batch.code_albedo + (1 - g) * enc.f_albedo;
  }
  model::DecodedMaps S = model.DecodeShape(f_S);
  model::DecodedMaps A = model.DecodeAlbedo(f_A);

  // Eq. 7: landmarks of the true shape S projected by M.
  at::Tensor vertices = render::VerticesFromUVMap(topo, S.value);  // [B, N, 3]
  at::Tensor projected = ProjectedLandmarks(topo, vertices, enc.projection, batch.landmarks.size(1));
  if (W.landmark > 0)
    terms.Add("landmark", W.landmark, fit::LandmarkLoss(projected, batch.landmarks, {}, W.landmark_scale));

  auto render_fn = [&](const at::Tensor& shape, const at::Tensor& albedo) {
    auto r = render::Render(topo, render::VerticesFromUVMap(topo, shape), render::VerticesFromUVMap(topo, albedo),
                            enc.projection, enc.lighting, static_cast<int>(H), static_cast<int>(Wd));
    return fit::Rendering{r.image, r.mask};
  };

  if (phase == Phase::kPretrain || metrics) {
    const double pw = phase == Phase::kPretrain ? 1.0 : 0.0;  // evaluated as metrics only in phase 2
    auto add = [&](const std::string& name, double w, const at::Tensor& per_image) {
      if (w > 0) terms.Add(name, w * pw, per_image * has_gt);
    };
    AddEncoderTerms(terms, model, enc, batch, o, pw);
    if (o.pretrain.shape > 0) add("gt_shape", o.pretrain.shape, MapErrorPerImage(S, batch.shape_uv, mask, proxy));
    if (o.pretrain.albedo > 0) add("gt_albedo", o.pretrain.albedo, MapErrorPerImage(A, batch.albedo_uv, mask, proxy));
  }

  if (phase == Phase::kFull) {
    // Eq. 15 (or I(S, A) without proxies), eq. 6 with the optional perceptual term.
    const unsigned pairings = proxy ? W.PairingBits() : fit::kTrueShapeTrueAlbedo;
    if (W.photometric > 0) {
      auto rec = fit::ReconstructionPairings(S.value, S.proxy, A.value, A.proxy, batch.images, render_fn, pairings,
                                             perceptual, W.perceptual);
      for (const auto& [p, value] : rec.terms) terms.Add(std::string("rec_") + fit::PairingName(p), W.photometric, value);
    }
    // Eq. 13: regularisers on the proxies (on the true maps without proxies).
    const at::Tensor& Sp = proxy ? S.proxy : S.value;
    const at::Tensor& Ap = proxy ? A.proxy : A.value;
    if (W.albedo_symmetry > 0) terms.Add("albedo_symmetry", W.albedo_symmetry, fit::AlbedoSymmetryLoss(Ap, mask));
    at::Tensor uv_color, uv_vis;
    if (W.albedo_constancy > 0 || (proxy && W.residual_symmetry > 0)) {
      torch::NoGradGuard no_grad;  // the input unwrapped to UV and T are weights, not optimised
      auto un = render::UnwrapTexture(topo, batch.images, vertices.detach(), enc.projection.detach());
      uv_color = un.uv_color, uv_vis = un.uv_visibility;
    }
    if (W.albedo_constancy > 0)
      terms.Add("albedo_constancy", W.albedo_constancy,
                fit::AlbedoConstancyLoss(Ap, uv_color, uv_vis, mask, W.constancy_alpha, W.constancy_p));
    if (W.shape_smoothness > 0) terms.Add("shape_smoothness", W.shape_smoothness, fit::ShapeSmoothnessLoss(Sp, mask));
    if (proxy) {  // eqs. 14 and 16
      if (W.residual_shape > 0) terms.Add("residual_shape", W.residual_shape, fit::ResidualMagnitudeLoss(S.value, S.proxy, mask));
      if (W.residual_albedo > 0)
        terms.Add("residual_albedo", W.residual_albedo, fit::ResidualMagnitudeLoss(A.value, A.proxy, mask));
      if (W.residual_symmetry > 0)
        terms.Add("residual_symmetry", W.residual_symmetry,
                  fit::ResidualSymmetryLoss(S.value, S.proxy, uv_vis, mask, W.SymmetryMask()));
    }
  }
  if (W.latent_shape_prior > 0) terms.Add("latent_shape_prior", W.latent_shape_prior, fit::LatentPriorLoss(enc.f_shape));
  if (W.latent_albedo_prior > 0)
    terms.Add("latent_albedo_prior", W.latent_albedo_prior, fit::LatentPriorLoss(enc.f_albedo));

  if (metrics) {
    torch::NoGradGuard no_grad;
    auto r = render_fn(S.value, A.value);
    terms.Add("metric_l21", 0.0, fit::ImageL21(r.image, batch.images, r.coverage));
    terms.Add("metric_shape_l1", 0.0, fit::ResidualMagnitudeLoss(S.value, batch.shape_uv, mask).per_image * has_gt);
  }
  return terms;
}

bool GroundTruthNormalisation(const Dataset& dataset, at::Tensor& m_mean, at::Tensor& m_std, at::Tensor& l_mean,
                              at::Tensor& l_std) {
  const GroundTruth* gt = dataset.ground_truth();
  if (!gt) return false;
  std::vector<at::Tensor> ms, ls;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const auto& item = dataset.item(i);
    const int64_t row = gt->Find(item.id);
    if (row < 0) continue;
    // The crop transform depends on the landmarks only (io::CropFace).
    auto T = io::EstimateSimilarity(item.landmarks.points, io::CropTemplate(item.landmarks.convention, dataset.image_size()));
    ms.push_back(dataset.TargetProjection(row, T).flatten());
    ls.push_back(gt->L[row]);
  }
  if (ms.size() < 2) return false;
  auto M = torch::stack(ms), L = torch::stack(ls);
  m_mean = M.mean(0), l_mean = L.mean(0);
  // Floors keep constant entries (e.g. a corpus without roll) from dividing by ~0.
  m_std = M.std(0).clamp_min(1e-2 * M.abs().mean().item<double>() + 1e-6);
  l_std = L.std(0).clamp_min(1e-2);
  return true;
}

void PlotLossCurves(const std::string& train_csv, const std::string& val_csv, const std::string& png_path) {
  struct Series {
    std::string name;
    std::vector<std::pair<double, double>> pts;
  };
  auto read = [](const std::string& path, const std::string& prefix, std::vector<Series>& out) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) return;
    std::vector<std::string> cols;
    std::stringstream hs(line);
    for (std::string c; std::getline(hs, c, ',');) cols.push_back(c);
    std::map<std::string, size_t> index;
    while (std::getline(in, line)) {
      std::vector<std::string> v;
      std::stringstream ls(line);
      for (std::string c; std::getline(ls, c, ',');) v.push_back(c);
      if (v.empty()) continue;
      const double step = std::stod(v[0]);
      for (size_t c = 3; c < v.size() && c < cols.size(); ++c) {
        if (v[c].empty() || cols[c] == "grad_norm" || cols[c] == "seconds") continue;
        const double y = std::stod(v[c]);
        if (!(y > 0) || !std::isfinite(y)) continue;
        const std::string name = prefix + cols[c];
        if (!index.count(name)) index[name] = out.size(), out.push_back({name, {}});
        out[index[name]].pts.emplace_back(step, std::log10(y));
      }
    }
  };
  std::vector<Series> train, val;
  read(train_csv, "", train);
  read(val_csv, "val ", val);
  const int Wp = 1100, Hp = 600, left = 70, right = 260, top = 30, bottom = 50;
  cv::Mat img(Hp, Wp, CV_8UC3, cv::Scalar(255, 255, 255));
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (auto* s : {&train, &val})
    for (auto& ser : *s)
      for (auto& [x, y] : ser.pts) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (x0 > x1) x0 = 0, x1 = 1, y0 = -1, y1 = 0;
  if (x1 - x0 < 1) x1 = x0 + 1;
  y0 = std::floor(y0), y1 = std::ceil(y1);
  if (y1 - y0 < 1) y1 = y0 + 1;
  auto px = [&](double x, double y) {
    return cv::Point(left + static_cast<int>((x - x0) / (x1 - x0) * (Wp - left - right)),
                     top + static_cast<int>((y1 - y) / (y1 - y0) * (Hp - top - bottom)));
  };
  cv::rectangle(img, px(x0, y1), px(x1, y0), cv::Scalar(0, 0, 0));
  for (double y = y0; y <= y1 + 1e-9; y += 1) {
    cv::line(img, px(x0, y), px(x1, y), cv::Scalar(220, 220, 220));
    cv::putText(img, "1e" + std::to_string(static_cast<int>(y)), px(x0, y) + cv::Point(-60, 5), cv::FONT_HERSHEY_SIMPLEX,
                0.45, cv::Scalar(0, 0, 0));
  }
  cv::putText(img, "step " + std::to_string(static_cast<long long>(x0)), px(x0, y0) + cv::Point(0, 25),
              cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0));
  cv::putText(img, std::to_string(static_cast<long long>(x1)), px(x1, y0) + cv::Point(-40, 25), cv::FONT_HERSHEY_SIMPLEX,
              0.45, cv::Scalar(0, 0, 0));
  cv::putText(img, "facebatch train: loss terms (log10, unweighted)", cv::Point(left, 20), cv::FONT_HERSHEY_SIMPLEX, 0.55,
              cv::Scalar(0, 0, 0));
  int legend = 0;
  auto colour = [](size_t i) {
    static const cv::Scalar c[] = {{0, 0, 0},     {200, 0, 0},   {0, 150, 0},   {0, 0, 220},   {200, 0, 200},
                                   {0, 160, 200}, {200, 160, 0}, {120, 60, 0},  {0, 90, 160},  {100, 100, 100},
                                   {160, 0, 90},  {60, 120, 60}, {90, 0, 200},  {0, 200, 120}, {220, 120, 120},
                                   {120, 120, 220}, {40, 40, 140}, {140, 40, 40}, {40, 140, 140}, {90, 90, 0}};
    return c[i % 20];
  };
  std::map<std::string, size_t> colour_of;
  for (auto* s : {&train, &val}) {
    for (auto& ser : *s) {
      const std::string base = ser.name.rfind("val ", 0) == 0 ? ser.name.substr(4) : ser.name;
      if (!colour_of.count(base)) colour_of[base] = colour_of.size();
      const auto col = colour(colour_of[base]);
      const bool is_val = s == &val;
      for (size_t i = 0; i < ser.pts.size(); ++i) {
        auto p = px(ser.pts[i].first, ser.pts[i].second);
        if (is_val)
          cv::circle(img, p, 3, col, cv::FILLED);
        else if (i > 0)
          cv::line(img, px(ser.pts[i - 1].first, ser.pts[i - 1].second), p, col, ser.name == "total" ? 2 : 1,
                   cv::LINE_AA);
      }
      if (legend < 34) {
        cv::Point lp(Wp - right + 15, top + 10 + 16 * legend++);
        if (is_val)
          cv::circle(img, lp + cv::Point(10, -4), 3, col, cv::FILLED);
        else
          cv::line(img, lp + cv::Point(0, -4), lp + cv::Point(20, -4), col, 2);
        cv::putText(img, ser.name, lp + cv::Point(26, 0), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0));
      }
    }
  }
  if (!cv::imwrite(png_path, img)) throw InputError(png_path, "cannot write the PNG plot");
}

TrainSummary RunTrain(const TrainOptions& o) {
  o.Check();
  model::InstallTorchThreadHook();
  env::ConfigureThreads(o.threads);
  const c10::Device device(o.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw UsageError("train: --device " + o.device + " but this LibTorch has no usable CUDA device");
  fs::create_directories(o.out);
  const fs::path out(o.out), ckdir = out / "checkpoint";
  TrainSummary summary;
  summary.model_path = (out / "model.h5").string();
  summary.csv_path = (out / "losses.csv").string();
  summary.val_csv_path = (out / "validation.csv").string();
  summary.plot_path = (out / "losses.png").string();

  const io::Manifest manifest = io::ReadManifest(o.manifest);  // first: a bad manifest fails fast

  // --- model
  int64_t start_step = 0;
  std::string parent_hash;
  model::FaceModel model = [&] {
    if (o.resume) {
      if (!fs::exists(ckdir / "state.json"))
        throw InputError((ckdir / "state.json").string(), "--resume: no checkpoint to resume from");
      return model::FaceModel::Load((ckdir / "model.h5").string(), device);
    }
    if (!o.model_in.empty()) return model::FaceModel::Load(o.model_in, device);
    model::ModelConfig config = model::Preset(o.preset);
    if (!o.kind.empty()) config.kind = model::ParseKind(o.kind);
    if (!o.ablation.empty()) config.SetAblation(o.ablation);
    auto tmpl = render::DefaultTemplate(config.uv_rows, config.uv_cols);
    config.regions = tmpl.topology.regions;
    config.Check();
    auto m = model::FaceModel::Create(config, tmpl, o.seed);
    m.to(device);
    return m;
  }();
  const auto& cfg = model.config();

  // --- data: training items and the held-out split
  std::vector<io::Item> ok;
  for (const auto* item : manifest.OkItems())
    if (!item->landmarks.empty()) ok.push_back(*item);
  std::vector<io::Item> train_items, val_items;
  io::Manifest val_manifest;
  if (!o.val_manifest.empty()) {
    val_manifest = io::ReadManifest(o.val_manifest);
    for (const auto* item : val_manifest.OkItems()) val_items.push_back(*item);
    train_items = ok;
  } else {
    val_manifest = manifest;
    const auto perm = EpochPermutation(static_cast<int64_t>(ok.size()), o.seed ^ 0x5eedull, -1);
    const auto n_val = static_cast<size_t>(std::llround(o.val_fraction * static_cast<double>(ok.size())));
    std::vector<bool> is_val(ok.size(), false);
    for (size_t k = 0; k < n_val && k + 1 < ok.size(); ++k) is_val[static_cast<size_t>(perm[k])] = true;
    for (size_t i = 0; i < ok.size(); ++i) (is_val[i] ? val_items : train_items).push_back(ok[i]);
  }
  Dataset train_set(manifest, train_items, cfg.uv_rows, cfg.uv_cols, o.use_ground_truth, cfg.image_size);
  train_set.SetAugmentation(o.augment, o.seed);
  std::unique_ptr<Dataset> val_set;
  if (!val_items.empty())
    val_set = std::make_unique<Dataset>(val_manifest, val_items, cfg.uv_rows, cfg.uv_cols, o.use_ground_truth,
                                        cfg.image_size);
  log::Info("train: {} training items, {} held out; ground truth: {}", train_set.size(), val_items.size(),
            train_set.has_ground_truth() ? train_set.ground_truth_path() : std::string("none"));
  if (o.pretrain_steps > 0 && !train_set.has_ground_truth())
    log::Warn("train: pre-training without ground truth uses the landmark loss only");
  if (o.shape_targets == "similarity" && cfg.kind == model::ModelKind::kNonlinear) {
    const auto& tmpl = model.face_template();
    train_set.NormaliseShapeTargets(tmpl.mean_shape, tmpl.topology.mask);
    if (val_set) val_set->NormaliseShapeTargets(tmpl.mean_shape, tmpl.topology.mask);
  }
  // Latent targets: built once (before the first step) and kept beside the outputs for --resume.
  const fs::path shape_targets_path = out / "latent_targets_shape.pt", albedo_targets_path = out / "latent_targets_albedo.pt";
  LatentTargets shape_targets, albedo_targets;
  const bool want_targets = cfg.kind == model::ModelKind::kNonlinear && o.pretrain_steps > 0 &&
                            o.latent_target_items > 0 && train_set.has_ground_truth() &&
                            (o.pretrain.teacher_forcing || o.pretrain.latent_shape > 0 || o.pretrain.latent_albedo > 0);
  if (want_targets) {
    int64_t maps = 0;
    if (o.resume && fs::exists(shape_targets_path)) {
      shape_targets = LatentTargets::Load(shape_targets_path.string());
      albedo_targets = LatentTargets::Load(albedo_targets_path.string());
    } else if (!o.latent_targets.empty()) {
      const fs::path dir(o.latent_targets);
      shape_targets = LatentTargets::Load((dir / "latent_targets_shape.pt").string());
      albedo_targets = LatentTargets::Load((dir / "latent_targets_albedo.pt").string());
      if (shape_targets.basis.size(1) != 3 * cfg.uv_rows * cfg.uv_cols ||
          shape_targets.basis.size(0) > cfg.latent_shape || albedo_targets.basis.size(0) > cfg.latent_albedo)
        throw InputError(o.latent_targets, "latent targets of another UV size or latent length than the model's");
      shape_targets.Save(shape_targets_path.string());
      albedo_targets.Save(albedo_targets_path.string());
    } else {
      auto [shapes, albedos] = GroundTruthMaps(train_set, o.latent_target_items, o.seed);
      if (shapes.dim() == 4) {
        maps = shapes.size(0);
        shape_targets = BuildLatentTargets(shapes, cfg.latent_shape);
        albedo_targets = BuildLatentTargets(albedos, cfg.latent_albedo);
      }
      if (shape_targets.defined() && albedo_targets.defined()) {
        shape_targets.Save(shape_targets_path.string());
        albedo_targets.Save(albedo_targets_path.string());
      }
    }
    if (shape_targets.defined() && albedo_targets.defined()) {
      shape_targets.mean = shape_targets.mean.to(device), shape_targets.basis = shape_targets.basis.to(device);
      albedo_targets.mean = albedo_targets.mean.to(device), albedo_targets.basis = albedo_targets.basis.to(device);
      log::Info("train: latent targets: {} shape and {} albedo components ({})", shape_targets.basis.size(0),
                albedo_targets.basis.size(0),
                maps > 0                    ? "PCA of " + std::to_string(maps) + " ground-truth maps"
                : !o.latent_targets.empty() && !o.resume ? "from " + o.latent_targets
                                                         : std::string("from the checkpoint"));
    } else {
      shape_targets = {}, albedo_targets = {};
    }
  }
  if (o.DecodersOnly() && !shape_targets.defined())
    throw UsageError("train: --train-parts decoders needs latent targets: ground truth in the training items and "
                     "--latent-targets DIR (the run that trained these decoders) or --latent-target-items > 0");
  if ((o.EncoderOnly() || (o.DecodersOnly() && !o.model_in.empty())) && shape_targets.defined())
    CheckTargetsMatchTheDecoders(model, train_set, shape_targets, o.seed);
  auto attach_codes = [&](Batch& b) {
    if (!shape_targets.defined()) return;
    b.code_shape = shape_targets.Codes(b.shape_uv);
    b.code_albedo = albedo_targets.Codes(b.albedo_uv);
  };

  if (!o.resume) {
    parent_hash = model.provenance().training_steps > 0 || !o.model_in.empty() ? model.WeightsHash() : "";
    at::Tensor mm, ms, lm, ls;
    if (o.set_normalisation && GroundTruthNormalisation(train_set, mm, ms, lm, ls)) {
      model.SetNormalisation({mm.to(device), ms.to(device), lm.to(device), ls.to(device)});
      log::Info("train: M/L normalisation statistics set from {} ground-truth items", train_set.size());
    }
  }

  // --- optimiser (Adam, section 4)
  std::vector<at::Tensor> params;
  if (o.EncoderOnly()) {
    params = model.encoder_parameters();
  } else if (o.DecodersOnly()) {
    params = model.shape_decoder_parameters();
    for (auto& p : model.albedo_decoder_parameters()) params.push_back(p);
  } else {
    params = model.parameters();
  }
  if (params.empty()) throw UsageError("train: the model has no trainable parameters");
  if (o.EncoderOnly()) {  // frozen decoders: no gradients computed for them
    for (auto& p : model.shape_decoder_parameters()) p.set_requires_grad(false);
    for (auto& p : model.albedo_decoder_parameters()) p.set_requires_grad(false);
  }
  if (o.DecodersOnly())  // the frozen encoder likewise
    for (auto& p : model.encoder_parameters()) p.set_requires_grad(false);
  // Train mode: BatchNorm in batch mode for what trains, running statistics for frozen parts.
  auto train_mode = [&] { model.train(!o.DecodersOnly(), !o.EncoderOnly()); };
  torch::optim::Adam adam(params, torch::optim::AdamOptions(o.lr));
  std::unique_ptr<fit::PerceptualLoss> perceptual;
  if (o.loss.perceptual > 0) perceptual = std::make_unique<fit::PerceptualLoss>(o.loss.PerceptualOptions());

  if (o.resume) {
    std::ifstream in(ckdir / "state.json");
    auto state = nlohmann::json::parse(in);
    if (state.value("format", "") != kCheckpointFormat || state.value("version", 0) != kCheckpointVersion)
      throw InputError((ckdir / "state.json").string(), "not a facebatch-train-checkpoint of version 1");
    start_step = state.at("step").get<int64_t>();
    parent_hash = state.value("parent_hash", "");
    if (state.at("seed").get<uint64_t>() != o.seed || state.at("batch").get<int64_t>() != o.batch)
      throw UsageError("train: --resume needs the checkpoint's --seed and --batch (" +
                       std::to_string(state.at("seed").get<uint64_t>()) + ", " +
                       std::to_string(state.at("batch").get<int64_t>()) + ")");
    torch::serialize::InputArchive archive;
    archive.load_from((ckdir / "optimizer.pt").string(), device);
    adam.load(archive);
    TruncateCsv(summary.csv_path, start_step);
    TruncateCsv(summary.val_csv_path, start_step + 1);
    log::Info("train: resumed from {} at step {}", ckdir.string(), start_step);
  }
  summary.start_step = start_step;
  if (!fs::exists(summary.csv_path) || start_step == 0) std::ofstream(summary.csv_path) << CsvHeader() << "\n";
  if (!fs::exists(summary.val_csv_path) || start_step == 0) std::ofstream(summary.val_csv_path) << CsvHeader() << "\n";

  auto save_model = [&](const std::string& path, int64_t steps) {
    auto& p = model.provenance();
    p.command = o.command;
    p.training_data = "facebatch train on " + fs::absolute(o.manifest).string() + " (" + manifest.header.corpus +
                      ", items " + manifest.header.items_hash + ", " + std::to_string(train_set.size()) +
                      " training items" + (train_set.has_ground_truth() ? ", synthetic ground truth" : "") + ")";
    p.training_steps = steps;
    p.parent_hash = parent_hash;
    p.created.clear();
    model.Save(path);
  };
  auto checkpoint = [&](int64_t step) {
    const fs::path tmp = out / "checkpoint.tmp";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_model((tmp / "model.h5").string(), step);
    torch::serialize::OutputArchive archive;
    adam.save(archive);
    archive.save_to((tmp / "optimizer.pt").string());
    nlohmann::json state = {{"format", kCheckpointFormat}, {"version", kCheckpointVersion}, {"step", step},
                            {"seed", o.seed},  {"batch", o.batch},  {"parent_hash", parent_hash},
                            {"created", log::UtcTimestamp()}, {"data_position", step * o.batch}};
    std::ofstream(tmp / "state.json") << state.dump(2) << "\n";
    fs::remove_all(ckdir);
    fs::rename(tmp, ckdir);
  };
  auto phase_of = [&](int64_t step) { return step < o.pretrain_steps ? Phase::kPretrain : Phase::kFull; };
  auto validate = [&](int64_t step) {
    if (!val_set) return;
    model.eval();
    torch::NoGradGuard no_grad;
    const Phase phase = phase_of(std::max<int64_t>(0, step - 1));
    const int64_t total = (val_set->size() + o.batch - 1) / o.batch;
    const int64_t nb = o.val_batches > 0 ? std::min(total, o.val_batches) : total;
    std::vector<std::map<std::string, double>> rows;
    for (int64_t b = 0; b < nb; ++b) {
      std::vector<Sample> samples;
      for (int64_t i = b * o.batch; i < std::min(val_set->size(), (b + 1) * o.batch); ++i)
        try {
          samples.push_back(val_set->Load(i));
        } catch (const std::exception& e) {
          log::Warn("train: validation skips item {}: {}", val_set->item(i).id, e.what());
        }
      if (samples.empty()) continue;
      auto batch = ToDevice(Collate(samples, step), device);
      attach_codes(batch);
      rows.push_back(ComputeObjective(model, batch, phase, o, perceptual.get(), true).Means());
    }
    summary.last_val = Accumulate(rows);
    std::ofstream(summary.val_csv_path, std::ios::app) << CsvRow(step, phase, LearningRate(o, step), summary.last_val, -1, 0);
    log::Info("train: validation at step {}: total {:.5g}, l2,1 {:.5g}", step, summary.last_val["total"],
              summary.last_val["metric_l21"]);
    train_mode();
  };

  // --- the loop
  train_mode();
  double seconds = 0;
  int64_t timed = 0;
  const int64_t end_step = o.stop_at > 0 ? std::min(o.steps, o.stop_at) : o.steps;
  if (start_step < end_step) {
    BatchStream stream(train_set, o.batch, o.seed, start_step, o.loader_threads, o.prefetch);
    std::ofstream csv(summary.csv_path, std::ios::app);
    for (int64_t step = start_step; step < end_step; ++step) {
      const auto t0 = std::chrono::steady_clock::now();
      Batch batch = ToDevice(stream.Next(), device);
      const Phase phase = phase_of(step);
      if (phase == Phase::kPretrain) attach_codes(batch);  // the latent terms are pre-training's
      const double lr = LearningRate(o, step);
      for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      adam.zero_grad();
      fit::LossTerms terms = ComputeObjective(model, batch, phase, o, perceptual.get(), false);
      at::Tensor loss = terms.Mean();
      if (!std::isfinite(loss.item<double>())) throw Error("train: the loss became non-finite at step " + std::to_string(step));
      loss.backward();
      double grad_norm = o.clip_grad_norm > 0 ? torch::nn::utils::clip_grad_norm_(params, o.clip_grad_norm)
                                              : torch::nn::utils::clip_grad_norm_(params, 1e30);
      adam.step();
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      seconds += dt, ++timed;
      summary.last_train = terms.Means();
      csv << CsvRow(step, phase, lr, summary.last_train, grad_norm, dt);
      if (step % o.log_every == 0 || step + 1 == o.steps)
        log::Info("train: step {}/{} ({}) {} | {:.3f} s/step", step + 1, o.steps, PhaseName(phase), terms.ToString(), dt);
      const int64_t done = step + 1;
      if (o.val_every > 0 && done % o.val_every == 0 && done < o.steps) validate(done);
      if (done % o.checkpoint_every == 0 || done == end_step) {
        csv.flush();
        checkpoint(done);
        PlotLossCurves(summary.csv_path, summary.val_csv_path, summary.plot_path);
      }
    }
  }
  if (end_step < o.steps) {
    log::Info("train: stopped at step {} (--stop-at); continue with --resume", end_step);
    summary.steps = end_step;
    summary.stopped_early = true;
    summary.seconds_per_step = timed ? seconds / timed : 0;
    summary.weights_sha256 = model.WeightsHash();
    return summary;
  }
  validate(o.steps);
  model.eval();
  save_model(summary.model_path, o.steps);
  PlotLossCurves(summary.csv_path, summary.val_csv_path, summary.plot_path);
  summary.steps = o.steps;
  summary.seconds_per_step = timed ? seconds / timed : 0;
  summary.weights_sha256 = model.WeightsHash();
  log::Info("train: wrote {} ({} steps, {:.3f} s/step)", summary.model_path, o.steps, summary.seconds_per_step);
  return summary;
}

}  // namespace facebatch::train
