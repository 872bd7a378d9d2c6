// `facebatch eval`; see Eval.h and docs/eval.md.
#include "eval/Eval.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "batch/ShardReader.h"
#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "eval/FitRender.h"
#include "io/Crop.h"
#include "io/Image.h"
#include "io/Manifest.h"
#include "synth/GroundTruth.h"

namespace facebatch::eval {
namespace fs = std::filesystem;
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;
constexpr const char* kEvalFormat = "facebatch-eval";
constexpr int kEvalSchemaVersion = 1;

struct ManifestEntry {
  const io::Item* item = nullptr;
  std::string root;
};

struct GroundTruthEntry {
  const synth::GroundTruth* gt = nullptr;
  int64_t row = -1;
};

/// The fit's 68 landmark vertices projected by M and mapped to the original image: [68, 2].
at::Tensor FitLandmarksOriginal(const render::RenderResult& r, const at::Tensor& landmarks68, const cv::Matx23d& T) {
  auto p = r.screen[0].index_select(0, landmarks68).to(torch::kFloat64);  // [68, 2] model-image px
  auto A = torch::tensor({T(0, 0), T(0, 1), T(1, 0), T(1, 1)}, torch::kFloat64).view({2, 2});
  auto t = torch::tensor({T(0, 2), T(1, 2)}, torch::kFloat64);
  return p.matmul(A.t()) + t;
}

std::string Num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string(); }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

nlohmann::json JsonNum(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }
double NumJson(const nlohmann::json& r, const char* key) {
  return r.contains(key) && r.at(key).is_number() ? r.at(key).get<double>() : kNaN;
}

}  // namespace

void EvalOptions::Check() const {
  if (inputs.empty()) throw UsageError("eval: give one or more fit output files (shards or a merged file)");
  if (manifests.empty()) throw UsageError("eval: --manifest is required");
  if (out.empty()) throw UsageError("eval: --out DIR is required");
  metrics::ParseShapeAlignment(shape_alignment);
  ParseProgressMode(progress);
  if (threads < 0) throw UsageError("eval: --threads must be >= 0");
}

const std::vector<std::string>& YawBins() {
  static const std::vector<std::string> bins = {"0-30", "30-60", "60-90"};
  return bins;
}

std::string YawBin(double yaw) {
  if (!std::isfinite(yaw)) return "";
  const double a = std::abs(yaw);
  return a < 30 ? "0-30" : (a < 60 ? "30-60" : "60-90");  // beyond 90 (a fit's yaw) counts as 60-90
}

const std::vector<std::string>& MetricNames() {
  static const std::vector<std::string> names = {"l21", "nme_io", "nme_bbox", "shape_nme", "l21_unoccluded"};
  return names;
}

double MetricValue(const ImageEval& e, const std::string& metric) {
  if (metric == "l21") return e.l21;
  if (metric == "nme_io") return e.nme_io;
  if (metric == "nme_bbox") return e.nme_bbox;
  if (metric == "l21_unoccluded") return e.l21_unoccluded;
  if (metric == "shape_nme") return e.shape_nme;
  throw Error("eval: unknown metric " + metric);
}

void SummariseImages(EvalSummary& s) {
  s.stats.clear();
  s.counts.clear();
  s.counts["images"] = static_cast<int64_t>(s.images.size());
  s.counts["ok"] = 0;
  s.counts["failed"] = 0;
  for (const auto& e : s.images) {
    ++s.counts[e.status == "ok" ? "ok" : "failed"];
    if (e.status != "ok") ++s.counts["failed:" + (e.reason_code.empty() ? std::string("error") : e.reason_code)];
  }
  for (const auto& m : MetricNames()) {
    std::map<std::string, std::vector<double>> by_bin;
    for (const auto& e : s.images) {
      const double v = MetricValue(e, m);
      by_bin["all"].push_back(v);
      const auto bin = YawBin(e.yaw);
      if (!bin.empty()) by_bin[bin].push_back(v);
    }
    s.stats[m]["all"] = metrics::Summarise(by_bin["all"]);
    for (const auto& b : YawBins()) s.stats[m][b] = metrics::Summarise(by_bin[b]);
  }
}

std::string EvalSummary::Table() const {
  std::ostringstream os;
  os << fmt::format("facebatch eval: {} images ({} ok, {} failed); shape NME after {} alignment\n",
                    counts.count("images") ? counts.at("images") : 0, counts.count("ok") ? counts.at("ok") : 0,
                    counts.count("failed") ? counts.at("failed") : 0, shape_alignment);
  for (const auto& [k, v] : counts)
    if (k.rfind("failed:", 0) == 0) os << fmt::format("  {}: {}\n", k, v);
  os << fmt::format("{:<10} {:<6} {:>6} {:>10} {:>10} {:>10} {:>10}\n", "metric", "|yaw|", "count", "mean", "median",
                    "p90", "p95");
  auto f = [](double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("-"); };
  for (const auto& m : MetricNames()) {
    auto it = stats.find(m);
    if (it == stats.end()) continue;
    std::vector<std::string> bins = {"all"};
    bins.insert(bins.end(), YawBins().begin(), YawBins().end());
    for (const auto& b : bins) {
      const auto& st = it->second.at(b);
      os << fmt::format("{:<10} {:<6} {:>6} {:>10} {:>10} {:>10} {:>10}\n", b == "all" ? m : "", b, st.count,
                        f(st.mean), f(st.median), f(st.p90), f(st.p95));
    }
  }
  if (std::isfinite(shape_spread_ratio))
    os << fmt::format("shape spread ratio (fitted / ground truth, aligned; 0 = one shape for all): {:.4f} "
                      "(medians {:.4f}, {} images)\n",
                      shape_spread_ratio, shape_spread_ratio_median, shape_spread_images);
  if (!csv_path.empty()) os << "per image: " << csv_path << "\nsummary:   " << json_path << "\n";
  return os.str();
}

void WriteEvalOutputs(EvalSummary& s, const std::string& dir) {
  fs::create_directories(dir);
  s.csv_path = (fs::path(dir) / "per_image.csv").string();
  s.json_path = (fs::path(dir) / "summary.json").string();
  {
    std::ofstream csv(s.csv_path + ".tmp");
    csv << "id,subset,file,status,reason_code,yaw,yaw_source,l21,nme_io,nme_bbox,shape_nme,l21_unoccluded,"
           "landmark_source,fit_seconds,reason\n";
    for (const auto& e : s.images)
      csv << CsvField(e.id) << ',' << CsvField(e.subset) << ',' << CsvField(e.file) << ',' << e.status << ','
          << e.reason_code << ',' << Num(e.yaw) << ',' << e.yaw_source << ',' << Num(e.l21) << ',' << Num(e.nme_io)
          << ',' << Num(e.nme_bbox) << ',' << Num(e.shape_nme) << ',' << Num(e.l21_unoccluded) << ','
          << e.landmark_source << ','
          << Num(e.fit_seconds) << ',' << CsvField(e.reason) << '\n';
    if (!csv) throw InputError(s.csv_path, "cannot write");
  }
  fs::rename(s.csv_path + ".tmp", s.csv_path);
  nlohmann::json j;
  j["format"] = kEvalFormat;
  j["schema_version"] = kEvalSchemaVersion;
  j["shape_alignment"] = s.shape_alignment;
  j["yaw_bins"] = YawBins();
  j["counts"] = s.counts;
  if (std::isfinite(s.shape_spread_ratio))
    j["shape_spread_ratio"] = {{"count", s.shape_spread_images}, {"mean", s.shape_spread_ratio},
                               {"median", JsonNum(s.shape_spread_ratio_median)}};
  for (const auto& [m, bins] : s.stats)
    for (const auto& [b, st] : bins)
      j["metrics"][m][b] = {{"count", st.count},         {"mean", JsonNum(st.mean)}, {"median", JsonNum(st.median)},
                            {"p90", JsonNum(st.p90)},     {"p95", JsonNum(st.p95)},   {"min", JsonNum(st.min)},
                            {"max", JsonNum(st.max)}};
  auto& images = j["images"] = nlohmann::json::array();
  for (const auto& e : s.images) {
    images.push_back({{"id", e.id},
                      {"subset", e.subset},
                      {"file", e.file},
                      {"status", e.status},
                      {"reason_code", e.reason_code},
                      {"reason", e.reason},
                      {"yaw", JsonNum(e.yaw)},
                      {"yaw_source", e.yaw_source},
                      {"landmark_source", e.landmark_source},
                      {"l21", JsonNum(e.l21)},
                      {"nme_io", JsonNum(e.nme_io)},
                      {"nme_bbox", JsonNum(e.nme_bbox)},
                      {"shape_nme", JsonNum(e.shape_nme)},
                      {"l21_unoccluded", JsonNum(e.l21_unoccluded)},
                      {"fit_seconds", JsonNum(e.fit_seconds)}});
  }
  {
    std::ofstream out(s.json_path + ".tmp");
    out << j.dump(1) << "\n";
    if (!out) throw InputError(s.json_path, "cannot write");
  }
  fs::rename(s.json_path + ".tmp", s.json_path);
}

std::vector<ImageEval> ReadEvalImages(const std::string& dir) {
  const auto path = (fs::path(dir) / "summary.json").string();
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open (is it an eval output directory?)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw InputError(path, std::string("not JSON: ") + e.what());
  }
  if (j.value("format", "") != kEvalFormat) throw InputError(path, "not a facebatch-eval summary");
  if (j.value("schema_version", 0) != kEvalSchemaVersion)
    throw InputError(path, fmt::format("schema_version {} is not supported (this build reads {})",
                                       j.value("schema_version", 0), kEvalSchemaVersion));
  std::vector<ImageEval> images;
  for (const auto& r : j.at("images")) {
    ImageEval e;
    e.id = r.value("id", "");
    e.subset = r.value("subset", "");
    e.file = r.value("file", "");
    e.status = r.value("status", "");
    e.reason_code = r.value("reason_code", "");
    e.reason = r.value("reason", "");
    e.yaw = NumJson(r, "yaw");
    e.yaw_source = r.value("yaw_source", "");
    e.landmark_source = r.value("landmark_source", "");
    e.l21 = NumJson(r, "l21");
    e.nme_io = NumJson(r, "nme_io");
    e.nme_bbox = NumJson(r, "nme_bbox");
    e.shape_nme = NumJson(r, "shape_nme");
    e.l21_unoccluded = r.contains("l21_unoccluded") ? NumJson(r, "l21_unoccluded") : kNaN;
    e.fit_seconds = NumJson(r, "fit_seconds");
    images.push_back(std::move(e));
  }
  return images;
}

EvalSummary RunEval(const EvalOptions& o) {
  o.Check();
  env::ConfigureThreads(o.threads);
  const auto alignment = metrics::ParseShapeAlignment(o.shape_alignment);
  const auto files = FitOutputFiles(o.inputs);

  // Manifests: id -> item (and its corpus root).
  std::vector<io::Manifest> manifests;
  for (const auto& m : o.manifests) manifests.push_back(io::ReadManifest(m));
  std::map<std::string, ManifestEntry> items;
  for (const auto& m : manifests)
    for (const auto& it : m.items) items[it.id] = {&it, m.header.root};

  // Ground truth: the given files, else each manifest root's facebatch_ground_truth.h5.
  std::vector<std::string> gt_paths = o.ground_truth;
  if (gt_paths.empty())
    for (const auto& m : manifests) {
      const auto p = fs::path(m.header.root) / synth::kGroundTruthFileName;
      if (!m.header.root.empty() && fs::exists(p)) gt_paths.push_back(p.string());
    }
  std::vector<std::unique_ptr<synth::GroundTruth>> gts;
  std::map<std::string, GroundTruthEntry> gt_of;
  for (const auto& p : gt_paths) {
    gts.push_back(std::make_unique<synth::GroundTruth>(synth::ReadGroundTruth(p)));
    log::Info("eval: ground truth {} ({} images, UV {}x{})", p, gts.back()->size(), gts.back()->uv_rows,
              gts.back()->uv_cols);
    for (int64_t i = 0; i < gts.back()->size(); ++i) gt_of[gts.back()->ids[static_cast<size_t>(i)]] = {gts.back().get(), i};
  }

  EvalSummary summary;
  // Fitted and GT vertices (inside the GT mask) for the shape spread ratio (issue 14).
  std::vector<at::Tensor> spread_fit, spread_gt;
  summary.shape_alignment = metrics::ShapeAlignmentName(alignment);
  std::vector<std::unique_ptr<batch::ShardReader>> readers;
  int64_t total = 0;
  for (const auto& f : files) {
    readers.push_back(std::make_unique<batch::ShardReader>(f));
    RequireMaps(*readers.back());
    total += readers.back()->size();
  }
  Progress progress("eval", total, ParseProgressMode(o.progress), "images");
  torch::NoGradGuard no_grad;
  for (const auto& reader : readers) {
    const auto& shard = *reader;
    const ShardTopology topo(shard);
    const int S = topo.image_size;
    for (int64_t row = 0; row < shard.size(); ++row) {
      ImageEval e;
      e.id = shard.ids()[static_cast<size_t>(row)];
      e.file = shard.path();
      e.yaw = e.l21 = e.nme_io = e.nme_bbox = e.shape_nme = e.l21_unoccluded = kNaN;
      e.status = shard.status(row);
      e.fit_seconds = shard.Doubles("/fit/seconds", row).at(0);
      if (e.status != "ok") {
        e.reason_code = shard.String("/images/reason_code", row);
        e.reason = shard.String("/images/reason", row);
      }
      const auto mi = items.find(e.id);
      const io::Item* item = mi == items.end() ? nullptr : mi->second.item;
      if (item) e.subset = item->subset.empty() ? item->corpus : item->subset;
      const auto gi = gt_of.find(e.id);
      const synth::GroundTruth* gt = gi == gt_of.end() ? nullptr : gi->second.gt;
      const int64_t gt_row = gi == gt_of.end() ? -1 : gi->second.row;

      // |yaw|: ground truth, else the manifest's Pose_Para (radians), else the fit.
      if (gt) {
        e.yaw = gt->pose[gt_row][0].item<double>(), e.yaw_source = "ground_truth";
      } else if (item && item->ground_truth.count("Pose_Para") && item->ground_truth.at("Pose_Para").size() >= 2) {
        e.yaw = item->ground_truth.at("Pose_Para").values[1] * 180.0 / kPi, e.yaw_source = "manifest";
      } else if (e.status == "ok") {
        const auto a = shard.Floats("/pose/angles", row);
        if (!a.empty() && std::isfinite(a[0])) e.yaw = a[0] * 180.0 / kPi, e.yaw_source = "fit";
      }

      if (e.status == "ok") {
        try {
          if (!item) throw Error("the id is not in the given manifest(s)");
          auto fit = ReadFit(shard, row);
          const auto source = mi->second.root.empty() ? item->image : (fs::path(mi->second.root) / item->image).string();
          auto r = RenderFit(topo, fit.shape, fit.albedo, fit.projection, fit.lighting, S);
          auto crop = LoadCrop(source, fit.crop_to_original, S);
          e.l21 = metrics::L21Error(r.image, crop.unsqueeze(0), r.mask)[0].item<double>();
          // Synthetic ground truth that records its occluder: the same metric over the face
          // pixels the occluder does not hide (what the fit can be asked to explain).
          if (gt && gt->occluder.defined() && gt->occluder[gt_row][0].item<float>() >= 0) {
            const auto occ = gt->occluder[gt_row].to(torch::kDouble);
            const double reach = std::max(occ[3].item<double>(), occ[4].item<double>()) + 2;
            const int w = std::max(1, static_cast<int>(std::ceil(occ[1].item<double>() + reach)));
            const int h = std::max(1, static_cast<int>(std::ceil(occ[2].item<double>() + reach)));
            cv::Mat in_crop;
            cv::warpAffine(synth::OccluderMask(occ, h, w), in_crop, cv::Mat(io::InvertAffine(fit.crop_to_original)),
                           cv::Size(S, S), cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar(0));
            auto hidden = torch::from_blob(in_crop.data, {1, 1, S, S}, torch::kUInt8).clone() > 0;
            auto face = (r.mask > 0.5) & hidden.logical_not().to(r.mask.device());
            e.l21_unoccluded = metrics::L21Error(r.image, crop.unsqueeze(0), face)[0].item<double>();
          }
          // landmarks in the original image: ground truth, else the manifest's 68 points
          at::Tensor target;
          if (gt) {
            target = gt->landmarks[gt_row].to(torch::kFloat64), e.landmark_source = "ground_truth";
          } else if (item->landmarks.convention == io::LandmarkConvention::kIbug68) {
            target = torch::empty({68, 2}, torch::kFloat64);
            for (int k = 0; k < 68; ++k)
              target[k][0] = item->landmarks.points[k].x, target[k][1] = item->landmarks.points[k].y;
            e.landmark_source = "manifest";
          }
          if (target.defined()) {
            const auto pred = FitLandmarksOriginal(r, topo.mesh.landmarks68, fit.crop_to_original).unsqueeze(0);
            e.nme_io = metrics::LandmarkNme(pred, target.unsqueeze(0), metrics::NmeNormalisation::kInterOcular)[0].item<double>();
            e.nme_bbox = metrics::LandmarkNme(pred, target.unsqueeze(0), metrics::NmeNormalisation::kBoundingBox)[0].item<double>();
          }
          if (gt) {
            // The ground truth's UV grid resampled onto the fit's (the same UV parameterisation);
            // compared over the fit's vertices that are inside the ground truth's mask.
            auto gmap = ResampleUV(gt->shape_uv[gt_row].unsqueeze(0), topo.uv_rows, topo.uv_cols);
            auto gmask = ResampleUV(gt->template_mask.to(torch::kFloat32).view({1, 1, gt->uv_rows, gt->uv_cols}),
                                    topo.uv_rows, topo.uv_cols);
            auto gv = topo.Vertices(gmap);                             // [1, N, 3]
            auto w = topo.Vertices(gmask).squeeze(-1) > 0.999;          // [1, N]
            auto fv = topo.Vertices(fit.shape.unsqueeze(0));
            e.shape_nme = metrics::ShapeNme(fv, gv, topo.mesh.landmarks68, alignment, w)[0].item<double>();
            spread_fit.push_back(fv[0].index({w[0]}).to(torch::kFloat64));
            spread_gt.push_back(gv[0].index({w[0]}).to(torch::kFloat64));
          }
        } catch (const io::ItemError& ex) {
          e.status = "failed", e.reason_code = ex.code(), e.reason = ex.what();
        } catch (const std::exception& ex) {
          e.status = "failed", e.reason_code = "eval_error", e.reason = ex.what();
        }
      }
      progress.Add(1, e.status == "ok" ? 0 : 1);
      summary.images.push_back(std::move(e));
    }
  }
  progress.Finish();
  SummariseImages(summary);
  // Do the fitted shapes vary with the face as the truth does (1), or are they one shape (0)?
  bool same_size = spread_gt.size() >= 2;
  for (const auto& t : spread_gt) same_size = same_size && t.sizes() == spread_gt.front().sizes();
  if (same_size) {
    const auto G = torch::stack(spread_gt);
    const auto r = metrics::ShapeSpreadRatio(torch::stack(spread_fit), G, G.mean(0));
    summary.shape_spread_ratio = r.rms, summary.shape_spread_ratio_median = r.median;
    summary.shape_spread_images = G.size(0);
  }
  WriteEvalOutputs(summary, o.out);
  return summary;
}

}  // namespace facebatch::eval
