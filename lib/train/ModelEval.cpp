#include "train/ModelEval.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include <fmt/format.h>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "fit/LossTerms.h"
#include "fit/Losses.h"
#include "io/Crop.h"
#include "io/Manifest.h"
#include "model/FaceModel.h"
#include "render/Render.h"
#include "render/Topology.h"
#include "synth/GroundTruth.h"
#include "metrics/Metrics.h"
#include "train/Data.h"

namespace facebatch::train {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Outer eye corners in the iBUG 68-point order (0-based): the 300W "inter-ocular" pair.
constexpr int64_t kLeftEyeOuter = 36, kRightEyeOuter = 45;

const std::vector<std::string>& MetricNames() {
  static const std::vector<std::string> names = {
      "encoder_l21",      "encoder_shape_nme", "encoder_shape_nme_aligned", "mean_face_shape_nme_aligned",
      "texture_l21_init", "texture_l21",       "shape_nme_init",            "shape_nme",
      "shape_nme_init_aligned", "shape_nme_aligned"};
  return names;
}

double MetricOf(const ImageEval& e, const std::string& name) {
  if (name == "encoder_l21") return e.encoder_l21;
  if (name == "encoder_shape_nme") return e.encoder_shape_nme;
  if (name == "encoder_shape_nme_aligned") return e.encoder_shape_nme_aligned;
  if (name == "mean_face_shape_nme_aligned") return e.mean_face_shape_nme_aligned;
  if (name == "shape_nme_aligned") return e.shape_nme_aligned;
  if (name == "shape_nme_init_aligned") return e.shape_nme_init_aligned;
  if (name == "texture_l21_init") return e.texture_l21_init;
  if (name == "texture_l21") return e.texture_l21;
  if (name == "shape_nme_init") return e.shape_nme_init;
  return e.shape_nme;
}

std::string Num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string(); }

std::string CsvQuote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
  return q + "\"";
}

std::vector<double> ToDoubles(const at::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

bool HasProxy(const model::FaceModel& m) {
  return m.config().kind == model::ModelKind::kNonlinear && m.config().proxy;
}

// Options checked before use (UsageError naming the bad value).
fit::MinimiseOptions Checked(fit::MinimiseOptions o) {
  o.Check();
  return o;
}

}  // namespace

unsigned ParseEvalProtocols(const std::string& text) {
  if (text == "all") return kEvalAll;
  unsigned bits = 0;
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, ',');) {
    if (p == "encoder") bits |= kEvalEncoder;
    else if (p == "texture") bits |= kEvalTexture;
    else if (p == "shape") bits |= kEvalShape;
    else throw UsageError("--protocol: unknown protocol '" + p + "' (all, or a list of encoder, texture, shape)");
  }
  if (!bits) throw UsageError("--protocol: empty (all, or a list of encoder, texture, shape)");
  return bits;
}

void ModelEvalOptions::Check() const {
  if (model.empty()) throw UsageError("eval-model: --model is required");
  if (manifest.empty()) throw UsageError("eval-model: --manifest is required");
  if (out.empty()) throw UsageError("eval-model: --out is required");
  ParseEvalProtocols(protocol);
  if (steps < 0) throw UsageError("eval-model: --steps must be >= 0");
  if (max_images < 0) throw UsageError("eval-model: --max-images must be >= 0");
  if (batch < 1) throw UsageError("eval-model: --batch must be >= 1");
  fit::ParseOptimiserMethod(method);
  if (!(texture_step_size > 0) || !(shape_step_size > 0))
    throw UsageError("eval-model: --texture-step-size and --shape-step-size must be > 0");
  if (!(normal_weight >= 0)) throw UsageError("eval-model: --normal-weight must be >= 0");
  if (!(tolerance >= 0)) throw UsageError("eval-model: --tolerance must be >= 0");
  if (threads < 0) throw UsageError("eval-model: --threads must be >= 0");
  try {
    (void)c10::Device(device);
  } catch (const std::exception&) {
    throw UsageError("eval-model: --device must be cpu, cuda or cuda:N (got '" + device + "')");
  }
  ParseProgressMode(progress);
}

// --- metrics -------------------------------------------------------------------

at::Tensor InterOcularDistance(const render::FaceTopology& topology, const at::Tensor& vertices) {
  if (vertices.dim() != 3 || vertices.size(2) != 3)
    throw Error("InterOcularDistance: vertices must be a [B, N, 3] tensor");
  auto lm = topology.landmarks68.to(vertices.device());
  auto a = vertices.index_select(1, lm.narrow(0, kLeftEyeOuter, 1)).squeeze(1);
  auto b = vertices.index_select(1, lm.narrow(0, kRightEyeOuter, 1)).squeeze(1);
  return (a - b).norm(2, -1);
}

// --- protocols -----------------------------------------------------------------

at::Tensor RenderL21(const model::FaceModel& model, const at::Tensor& images, const at::Tensor& shape_map,
                     const at::Tensor& albedo_map, const at::Tensor& M, const at::Tensor& L) {
  const auto& topo = model.face_template().topology;
  auto r = render::Render(topo, render::VerticesFromUVMap(topo, shape_map), render::VerticesFromUVMap(topo, albedo_map),
                          M, L, static_cast<int>(images.size(2)), static_cast<int>(images.size(3)));
  return metrics::L21Error(r.image, images, r.mask);
}

ProtocolFit FitTexture(const model::FaceModel& model, const at::Tensor& images, const at::Tensor& gt_shape_map,
                       const at::Tensor& gt_M, const at::Tensor& f_albedo, const at::Tensor& L,
                       const fit::MinimiseOptions& options) {
  const auto& topo = model.face_template().topology;
  const int H = static_cast<int>(images.size(2)), W = static_cast<int>(images.size(3));
  const at::Tensor shape_vertices = render::VerticesFromUVMap(topo, gt_shape_map).detach();
  const at::Tensor M = gt_M.detach();
  at::Tensor fA = f_albedo.detach().clone().requires_grad_(true);
  at::Tensor Lp = L.detach().clone().requires_grad_(true);
  // The l2,1 of I(S_gt, A) under (M_gt, L) with the TRUE albedo A (Table 1).
  auto error = [&]() {
    auto A = model.DecodeAlbedo(fA).value;
    auto r = render::Render(topo, shape_vertices, render::VerticesFromUVMap(topo, A), M, Lp, H, W);
    return fit::PhotometricLoss(r.image, images, r.mask);
  };
  ProtocolFit out;
  {
    torch::NoGradGuard g;
    out.initial = error().per_image.to(torch::kDouble);
  }
  auto objective = [&]() {
    fit::LossTerms t;
    t.Add("l21", 1.0, error());
    return t;
  };
  out.summaries = fit::MinimiseBatch({fA, Lp}, objective, Checked(options));
  torch::NoGradGuard g;
  out.final = error().per_image.to(torch::kDouble);  // the best state MinimiseBatch left
  return out;
}

ProtocolFit FitShape(const model::FaceModel& model, const at::Tensor& gt_shape_map, const at::Tensor& f_shape,
                     double normal_weight, const fit::MinimiseOptions& options) {
  const auto& topo = model.face_template().topology;
  const at::Tensor gt_raw = render::VerticesFromUVMap(topo, gt_shape_map).detach();
  at::Tensor fS = f_shape.detach().clone().requires_grad_(true);
  const auto lm68 = topo.landmarks68;
  ProtocolFit out;
  at::Tensor gt;
  {
    torch::NoGradGuard g;
    const auto V0 = render::VerticesFromUVMap(topo, model.DecodeShape(fS).value);
    out.initial = metrics::ShapeNme(V0, gt_raw, lm68, metrics::ShapeAlignment::kNone);
    out.initial_aligned = metrics::ShapeNme(V0, gt_raw, lm68, metrics::ShapeAlignment::kSimilarity);
    // The target: the GT mesh similarity-aligned onto the initial shape. A global
    // scale, rotation and translation of S are M's under weak perspective (and the
    // crop removes scale), so the protocol measures what S itself can express.
    gt = metrics::SimilarityAlign(gt_raw, V0).to(gt_raw.options());
  }
  const at::Tensor gt_normals = render::VertexNormals(topo, gt).detach();
  const at::Tensor iod = InterOcularDistance(topo, gt).clamp_min(1e-12).detach();
  // Section 4.2: vertex distance (Euclidean; here as the NME itself, so the
  // objective is unitless) plus the normals' cosine distance.
  auto objective = [&]() {
    auto V = render::VerticesFromUVMap(topo, model.DecodeShape(fS).value);
    auto dist = ((V - gt).pow(2).sum(-1) + 1e-12).sqrt().mean(1) / iod;  // smooth at 0
    fit::LossTerms t;
    t.Add("vertex_nme", 1.0, dist);
    if (normal_weight > 0) {
      auto cosine = (render::VertexNormals(topo, V) * gt_normals).sum(-1);
      t.Add("normal_cosine", normal_weight, (1.0 - cosine).mean(1));
    }
    return t;
  };
  out.summaries = fit::MinimiseBatch({fS}, objective, Checked(options));
  torch::NoGradGuard g;
  out.vertices = render::VerticesFromUVMap(topo, model.DecodeShape(fS).value);
  out.final = metrics::ShapeNme(out.vertices, gt_raw, lm68, metrics::ShapeAlignment::kNone);
  out.final_aligned = metrics::ShapeNme(out.vertices, gt_raw, lm68, metrics::ShapeAlignment::kSimilarity);
  return out;
}

// --- the command ---------------------------------------------------------------

ImageEval::ImageEval()
    : yaw(kNaN), encoder_l21(kNaN), encoder_shape_nme(kNaN), encoder_shape_nme_aligned(kNaN),
      mean_face_shape_nme_aligned(kNaN), texture_l21_init(kNaN), texture_l21(kNaN), shape_nme_init(kNaN),
      shape_nme(kNaN), shape_nme_init_aligned(kNaN), shape_nme_aligned(kNaN) {}

std::string ModelEvalSummary::Table() const {
  std::string s = fmt::format("model {} ({}), {} images ({} failed), {} optimisation steps, {:.1f} s\n", model_path,
                              model_kind, images.size(), failed, steps, seconds);
  s += "| metric | images | mean | median |\n|---|---|---|---|\n";
  static const std::map<std::string, std::string> label = {
      {"encoder_l21", "encoder l2,1 (Table 1 metric)"},
      {"encoder_shape_nme", "encoder shape NME (no alignment)"},
      {"encoder_shape_nme_aligned", "encoder shape NME, similarity-aligned"},
      {"mean_face_shape_nme_aligned", "mean face (template) shape NME, similarity-aligned"},
      {"shape_nme_init_aligned", "shape NME, encoder init, similarity-aligned"},
      {"shape_nme_aligned", "shape NME after fitting f_S, similarity-aligned"},
      {"texture_l21_init", "texture l2,1, encoder init (GT geometry + M)"},
      {"texture_l21", "texture l2,1 after fitting f_A, L (Table 1 protocol)"},
      {"shape_nme_init", "shape NME, encoder init"},
      {"shape_nme", "shape NME after fitting f_S (section 4.2, no alignment)"}};
  for (const auto& name : MetricNames()) {
    auto it = stats.find(name);
    if (it == stats.end() || it->second.count == 0) continue;
    s += fmt::format("| {} | {} | {:.4f} | {:.4f} |\n", label.at(name), it->second.count, it->second.mean,
                     it->second.median);
  }
  auto ratio = [&](const char* label, const metrics::SpreadRatio& r) {
    if (std::isfinite(r.rms)) s += fmt::format("| {} | {} | {:.4f} | {:.4f} |\n", label, spread_images, r.rms, r.median);
  };
  ratio("shape spread ratio, encoder (1 = as varied as the truth, 0 = one shape)", encoder_spread);
  ratio("shape spread ratio after fitting f_S", fitted_spread);
  s += "texture protocol albedo: " + texture_albedo + "\n";
  return s;
}

ModelEvalSummary RunModelEval(const ModelEvalOptions& o) {
  o.Check();
  const unsigned protocols = ParseEvalProtocols(o.protocol);
  env::ConfigureThreads(o.threads);
  const c10::Device device(o.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw UsageError("eval-model: --device " + o.device + " but this LibTorch has no usable CUDA device");
  const auto start = std::chrono::steady_clock::now();

  const io::Manifest manifest = io::ReadManifest(o.manifest);
  model::FaceModel model = model::FaceModel::Load(o.model, device);
  model.eval();
  for (auto& p : model.parameters()) p.requires_grad_(false);  // only latents, L are optimised
  const auto& cfg = model.config();
  const auto& topo = model.face_template().topology;

  ModelEvalSummary summary;
  summary.model_path = o.model;
  summary.model_kind = cfg.kind == model::ModelKind::kLinear ? "linear" : cfg.AblationName();
  summary.texture_albedo = cfg.kind == model::ModelKind::kLinear
                               ? "A of the linear (PCA) albedo model"
                               : HasProxy(model) ? "A, the true albedo (proxy head A~ not used)"
                                                 : "A, the decoder's only albedo (no proxy)";
  summary.steps = o.steps;

  // Ground truth (needed by the shape metrics and the texture/shape protocols).
  const std::string gt_path =
      o.ground_truth.empty() ? (fs::path(manifest.header.root) / synth::kGroundTruthFileName).string() : o.ground_truth;
  std::unique_ptr<synth::GroundTruth> gt;
  if (fs::exists(gt_path)) {
    gt = std::make_unique<synth::GroundTruth>(synth::ReadGroundTruth(gt_path));
    if (gt->uv_rows != cfg.uv_rows || gt->uv_cols != cfg.uv_cols)
      throw InputError(gt_path, fmt::format("ground-truth UV size {}x{} differs from the model's {}x{}", gt->uv_rows,
                                            gt->uv_cols, cfg.uv_rows, cfg.uv_cols));
  } else if (protocols & (kEvalTexture | kEvalShape)) {
    throw InputError(gt_path, "no ground-truth file: the texture and shape protocols need one "
                              "(facebatch synth writes it at the corpus root; or give --ground-truth)");
  } else {
    log::Warn("eval-model: no ground truth at {}: encoder l2,1 only", gt_path);
  }

  std::vector<io::Item> items;
  for (const auto* item : manifest.OkItems()) {
    if (item->landmarks.empty()) continue;
    if (o.max_images > 0 && static_cast<int64_t>(items.size()) >= o.max_images) break;
    items.push_back(*item);
  }
  if (items.empty()) throw InputError(o.manifest, "no usable item (status ok, with landmarks)");
  // Ground truth is attached below from `gt` (which may come from --ground-truth).
  Dataset data(manifest, items, cfg.uv_rows, cfg.uv_cols, /*use_ground_truth=*/false, cfg.image_size);
  const int64_t n = data.size();
  log::Info("eval-model: {} ({}), {} images, protocols {}, {} steps", o.model, summary.model_kind, n, o.protocol,
            o.steps);

  fit::MinimiseOptions texture_opts, shape_opts;
  texture_opts.max_iterations = shape_opts.max_iterations = o.steps;
  texture_opts.optimiser.method = shape_opts.optimiser.method = fit::ParseOptimiserMethod(o.method);
  texture_opts.optimiser.step_size = o.texture_step_size;
  shape_opts.optimiser.step_size = o.shape_step_size;
  texture_opts.convergence.relative_tolerance = shape_opts.convergence.relative_tolerance = o.tolerance;

  // Aligned vertices for the spread ratios (over all images with ground truth).
  std::vector<at::Tensor> spread_encoder, spread_fitted, spread_gt;
  const at::Tensor mean_face = render::VerticesFromUVMap(topo, model.face_template().mean_shape.unsqueeze(0)).squeeze(0);

  Progress progress("eval-model", n, ParseProgressMode(o.progress), "images");
  summary.images.resize(static_cast<size_t>(n));
  for (int64_t begin = 0; begin < n; begin += o.batch) {
    const int64_t end = std::min(n, begin + o.batch);
    std::vector<Sample> samples;
    std::vector<int64_t> index;         // result index of each sample
    std::vector<int64_t> gt_rows;       // -1 without ground truth
    int64_t failed = 0;
    for (int64_t i = begin; i < end; ++i) {
      ImageEval& e = summary.images[static_cast<size_t>(i)];
      const io::Item& item = data.item(i);
      e.id = item.id;
      try {
        Sample s = data.Load(i);
        const int64_t row = gt ? gt->Find(item.id) : -1;
        if (row >= 0) {
          // The crop transform depends on the landmarks only (io::CropFace).
          const auto T = io::EstimateSimilarity(item.landmarks.points,
                                                io::CropTemplate(item.landmarks.convention, cfg.image_size));
          s.M = ProjectionToCrop(gt->M[row], T);
          s.shape_uv = gt->shape_uv[row], s.albedo_uv = gt->albedo_uv[row], s.L = gt->L[row];
          s.has_ground_truth = true;
          e.yaw = gt->pose[row][0].item<double>();
        } else if (gt) {
          e.status = "no-ground-truth";
          e.reason = "no row in " + gt_path;
        }
        samples.push_back(std::move(s));
        index.push_back(i);
        gt_rows.push_back(row);
      } catch (const std::exception& ex) {
        e.status = "failed";
        e.reason = ex.what();
        ++failed;
        log::Warn("eval-model: {}: {}", item.id, ex.what());
      }
    }
    summary.failed += failed;
    if (samples.empty()) {
      progress.Add(end - begin, failed);
      continue;
    }
    Batch b = Collate(samples, 0);
    const at::Tensor images = b.images.to(device);
    model::Encoding enc;
    at::Tensor S, A;
    {
      torch::NoGradGuard g;
      enc = model.Encode(images);
      if (protocols & kEvalEncoder) {
        S = model.DecodeShape(enc.f_shape).value;
        A = model.DecodeAlbedo(enc.f_albedo).value;
      }
    }
    // Rows with ground truth.
    std::vector<int64_t> with_gt;
    for (size_t k = 0; k < samples.size(); ++k)
      if (gt_rows[k] >= 0) with_gt.push_back(static_cast<int64_t>(k));
    const auto gi = torch::tensor(with_gt, torch::kLong).to(device);
    const auto pick = [&](const at::Tensor& t) { return t.to(device).index_select(0, gi); };
    auto set = [&](const std::vector<double>& v, bool gt_only, auto field) {
      for (size_t j = 0; j < v.size(); ++j) {
        const size_t k = gt_only ? static_cast<size_t>(with_gt[j]) : j;
        field(summary.images[static_cast<size_t>(index[k])], v[j]);
      }
    };

    if (protocols & kEvalEncoder) {
      torch::NoGradGuard g;
      set(ToDoubles(RenderL21(model, images, S, A, enc.projection, enc.lighting)), false, [](ImageEval& e, double v) {
        e.encoder_l21 = v;
        if (!std::isfinite(v) && e.reason.empty()) e.reason = "the encoder's reconstruction covers no pixel";
      });
      if (!with_gt.empty()) {
        const auto V = render::VerticesFromUVMap(topo, S.index_select(0, gi));
        const auto G = render::VerticesFromUVMap(topo, pick(b.shape_uv));
        const auto lm68 = topo.landmarks68;
        using metrics::ShapeAlignment;
        set(ToDoubles(metrics::ShapeNme(V, G, lm68, ShapeAlignment::kNone)), true,
            [](ImageEval& e, double v) { e.encoder_shape_nme = v; });
        set(ToDoubles(metrics::ShapeNme(V, G, lm68, ShapeAlignment::kSimilarity)), true,
            [](ImageEval& e, double v) { e.encoder_shape_nme_aligned = v; });
        set(ToDoubles(metrics::ShapeNme(mean_face.unsqueeze(0).expand_as(G), G, lm68, ShapeAlignment::kSimilarity)),
            true, [](ImageEval& e, double v) { e.mean_face_shape_nme_aligned = v; });
        spread_encoder.push_back(V.cpu());
        spread_gt.push_back(G.cpu());
      }
    }
    if ((protocols & kEvalTexture) && !with_gt.empty()) {
      auto r = FitTexture(model, images.index_select(0, gi), pick(b.shape_uv), pick(b.M),
                          enc.f_albedo.index_select(0, gi), enc.lighting.index_select(0, gi), texture_opts);
      set(ToDoubles(r.initial), true, [](ImageEval& e, double v) { e.texture_l21_init = v; });
      set(ToDoubles(r.final), true, [](ImageEval& e, double v) { e.texture_l21 = v; });
      for (size_t j = 0; j < with_gt.size(); ++j)
        summary.images[static_cast<size_t>(index[static_cast<size_t>(with_gt[j])])].texture_iterations =
            r.summaries[j].iterations;
    }
    if ((protocols & kEvalShape) && !with_gt.empty()) {
      auto r = FitShape(model, pick(b.shape_uv), enc.f_shape.index_select(0, gi), o.normal_weight, shape_opts);
      set(ToDoubles(r.initial), true, [](ImageEval& e, double v) { e.shape_nme_init = v; });
      set(ToDoubles(r.final), true, [](ImageEval& e, double v) { e.shape_nme = v; });
      set(ToDoubles(r.initial_aligned), true, [](ImageEval& e, double v) { e.shape_nme_init_aligned = v; });
      set(ToDoubles(r.final_aligned), true, [](ImageEval& e, double v) { e.shape_nme_aligned = v; });
      spread_fitted.push_back(r.vertices.cpu());
      for (size_t j = 0; j < with_gt.size(); ++j)
        summary.images[static_cast<size_t>(index[static_cast<size_t>(with_gt[j])])].shape_iterations =
            r.summaries[j].iterations;
    }
    progress.Add(end - begin, failed);
  }
  progress.Finish();

  for (const auto& name : MetricNames()) {
    std::vector<double> v;
    for (const auto& e : summary.images) {
      const double x = MetricOf(e, name);
      if (std::isfinite(x)) v.push_back(x);
    }
    MetricStats st;
    st.count = static_cast<int64_t>(v.size());
    if (!v.empty()) {
      double sum = 0;
      for (double x : v) sum += x;
      st.mean = sum / static_cast<double>(v.size());
      std::sort(v.begin(), v.end());
      const size_t m = v.size() / 2;
      st.median = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    }
    summary.stats[name] = st;
  }
  if (!spread_gt.empty()) {
    const auto G = torch::cat(spread_gt), ref = mean_face.cpu();
    summary.spread_images = G.size(0);
    if (!spread_encoder.empty()) summary.encoder_spread = metrics::ShapeSpreadRatio(torch::cat(spread_encoder), G, ref);
    if (spread_fitted.size() == spread_gt.size())
      summary.fitted_spread = metrics::ShapeSpreadRatio(torch::cat(spread_fitted), G, ref);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // --- outputs
  fs::create_directories(o.out);
  summary.csv_path = (fs::path(o.out) / "model_eval.csv").string();
  summary.json_path = (fs::path(o.out) / "model_eval.json").string();
  {
    std::ofstream csv(summary.csv_path + ".tmp");
    csv << "id,status,reason,yaw,encoder_l21,encoder_shape_nme,encoder_shape_nme_aligned,mean_face_shape_nme_aligned,"
           "texture_l21_init,texture_l21,texture_iterations,shape_nme_init,shape_nme,shape_nme_init_aligned,shape_nme_aligned,"
           "shape_iterations\n";
    for (const auto& e : summary.images)
      csv << CsvQuote(e.id) << ',' << e.status << ',' << CsvQuote(e.reason) << ',' << Num(e.yaw) << ','
          << Num(e.encoder_l21) << ',' << Num(e.encoder_shape_nme) << ',' << Num(e.encoder_shape_nme_aligned) << ','
          << Num(e.mean_face_shape_nme_aligned) << ',' << Num(e.texture_l21_init) << ',' << Num(e.texture_l21) << ','
          << e.texture_iterations << ',' << Num(e.shape_nme_init) << ',' << Num(e.shape_nme) << ','
          << Num(e.shape_nme_init_aligned) << ',' << Num(e.shape_nme_aligned) << ',' << e.shape_iterations << '\n';
    if (!csv) throw InputError(summary.csv_path, "cannot write");
  }
  fs::rename(summary.csv_path + ".tmp", summary.csv_path);
  nlohmann::json j;
  j["format"] = kModelEvalFormat;
  j["version"] = kModelEvalVersion;
  j["model"] = o.model;
  j["model_kind"] = summary.model_kind;
  j["model_sha256"] = model.WeightsHash();
  j["model_training_steps"] = model.provenance().training_steps;
  j["manifest"] = o.manifest;
  j["ground_truth"] = gt ? gt_path : std::string();
  j["protocols"] = o.protocol;
  j["steps"] = o.steps;
  j["method"] = o.method;
  j["texture_step_size"] = o.texture_step_size;
  j["shape_step_size"] = o.shape_step_size;
  j["normal_weight"] = o.normal_weight;
  j["tolerance"] = o.tolerance;
  j["texture_albedo"] = summary.texture_albedo;
  j["l21"] = "mean l2,1 RGB distance over the rendered face pixels, images in [0, 1] (Table 1, eq. 4)";
  j["nme"] = "mean per-vertex distance / GT inter-ocular distance (outer eye corners, iBUG 36 and 45, 0-based)";
  j["images"] = static_cast<int64_t>(summary.images.size());
  j["failed"] = summary.failed;
  j["seconds"] = summary.seconds;
  for (const auto& [name, st] : summary.stats) {
    nlohmann::json m;
    m["count"] = st.count;
    if (st.count > 0) m["mean"] = st.mean, m["median"] = st.median;
    j["metrics"][name] = m;
  }
  auto put_ratio = [&](const char* name, const metrics::SpreadRatio& r) {
    if (!std::isfinite(r.rms)) return;
    j["metrics"][name] = {{"count", summary.spread_images}, {"mean", r.rms}, {"median", r.median}};
  };
  put_ratio("shape_spread_ratio", summary.encoder_spread);
  put_ratio("fitted_shape_spread_ratio", summary.fitted_spread);
  j["aligned_nme"] = "the same NME after a least-squares similarity of the recovered mesh onto the GT (Umeyama)";
  j["spread_ratio"] = "shapes similarity-aligned onto the template mean; per image the mean vertex distance from the "
                      "set's mean shape; mean = RMS(recovered) / RMS(GT), median = median(recovered) / median(GT)";
  {
    std::ofstream js(summary.json_path + ".tmp");
    js << j.dump(2) << '\n';
    if (!js) throw InputError(summary.json_path, "cannot write");
  }
  fs::rename(summary.json_path + ".tmp", summary.json_path);
  return summary;
}

}  // namespace facebatch::train
