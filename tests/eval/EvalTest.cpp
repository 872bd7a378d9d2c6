// `facebatch eval` on fit outputs whose fits ARE the synthetic ground truth
// (written through batch::WriteShardFile), and on perturbed versions of them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "TestSupport.h"
#include "batch/ShardFile.h"
#include "batch/ShardReader.h"
#include "eval/Eval.h"
#include "eval/FitRender.h"
#include "eval/Report.h"
#include "io/Crop.h"
#include "io/Image.h"
#include "io/Index.h"
#include "io/Manifest.h"
#include "render/Template.h"
#include "synth/GroundTruth.h"

namespace facebatch::eval {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::TempDir;

std::vector<float> Floats(const at::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

struct Corpus {
  std::string manifest;
  io::Manifest m;
  synth::GroundTruth gt;
};

/// samples/AFLW2000 (synthetic, with facebatch_ground_truth.h5) indexed into `dir`.
Corpus IndexSamples(const TempDir& dir, const std::string& root = std::string(FACEBATCH_SAMPLES) + "/AFLW2000",
                    const std::string& name = "aflw.jsonl") {
  io::IndexOptions o;
  o.root = root;
  o.out = (dir / name).string();
  o.progress = "none";
  o.threads = 1;
  io::RunIndex(o);
  Corpus c;
  c.manifest = o.out;
  c.m = io::ReadManifest(o.out);
  c.gt = synth::ReadGroundTruth(o.root + "/" + synth::kGroundTruthFileName);
  return c;
}

/// The shard header of a topology (as the fit job writes it).
batch::ShardHeader MakeHeader(const render::FaceTopology& topo) {
  batch::ShardHeader header;
  auto tri = topo.triangles.contiguous();
  header.triangles.assign(tri.data_ptr<int64_t>(), tri.data_ptr<int64_t>() + tri.numel());
  header.vertex_uv = Floats(topo.vertex_uv);
  auto lm = topo.landmarks68.contiguous();
  header.landmarks68.assign(lm.data_ptr<int64_t>(), lm.data_ptr<int64_t>() + lm.numel());
  auto mask = topo.mask.to(torch::kInt64).contiguous();
  header.mask.assign(mask.data_ptr<int64_t>(), mask.data_ptr<int64_t>() + mask.numel());
  header.int_attrs["image_size"] = io::kCropSize;
  header.string_attrs["config"] = "steps = 0";
  return header;
}

/// Writes a shard whose maps, M (into the crop) and L are the ground truth, perturbed by
/// `k` (0 = exact): shape += 0.15 k cm seeded noise, albedo *= 1 - 0.15 k, M shifted by 3 k px.
/// `fail_id` (if any) is written as a failed fit.
std::string WriteShard(const Corpus& c, const fs::path& path, double k, const std::string& fail_id = "") {
  const int U = c.gt.uv_rows, V = c.gt.uv_cols;
  const auto tmpl = render::DefaultTemplate(U, V);
  const auto& topo = tmpl.topology;
  batch::LayoutSizes sizes;
  sizes.latent_shape = 4, sizes.latent_albedo = 4, sizes.uv_rows = U, sizes.uv_cols = V;
  sizes.num_vertices = topo.num_vertices(), sizes.num_triangles = topo.num_triangles();
  sizes.terms = {"photometric", "total"};
  const auto layout = batch::ShardLayout::Make(sizes, batch::ParseOutputs("shape,albedo"), false);
  const auto header = MakeHeader(topo);
  torch::manual_seed(11);
  std::vector<batch::ImageRecord> records;
  int64_t pos = 0;
  for (const auto* item : c.m.OkItems()) {
    const int64_t g = c.gt.Find(item->id);
    EXPECT_GE(g, 0) << item->id;
    const auto source = (fs::path(c.m.header.root) / item->image).string();
    const auto crop = io::CropFace(io::LoadImageBgr(source), item->landmarks, io::kCropSize);
    const auto& A = crop.original_to_crop;
    auto Am = torch::tensor({A(0, 0), A(0, 1), A(1, 0), A(1, 1)}, torch::kFloat32).view({2, 2});
    auto M = Am.matmul(c.gt.M[g]);  // [2, 4]: (x', y') = A (M [X 1]) + a
    M.select(1, 3).add_(torch::tensor({static_cast<float>(A(0, 2)), static_cast<float>(A(1, 2))}));
    M.select(1, 3).add_(3.0 * k);
    auto shape = c.gt.shape_uv[g] + 0.15 * k * torch::randn({3, U, V}) * topo.mask.to(torch::kFloat32);
    auto albedo = c.gt.albedo_uv[g] * (1.0 - 0.15 * k);
    batch::ImageRecord r;
    r.id = item->id;
    r.position = pos++;
    const bool failed = item->id == fail_id;
    r.strings["/images/id"] = item->id;
    r.strings["/images/source"] = source;
    r.strings["/images/status"] = failed ? "failed" : "ok";
    r.strings["/images/reason_code"] = failed ? "diverged" : "";
    r.strings["/images/reason"] = failed ? "test: diverged" : "";
    const auto& T = crop.crop_to_original;
    r.doubles["/images/crop_to_original"] = {T(0, 0), T(0, 1), T(0, 2), T(1, 0), T(1, 1), T(1, 2)};
    r.floats["/latents/projection"] = Floats(M);
    r.floats["/latents/lighting"] = Floats(c.gt.L[g]);
    r.floats["/maps/shape"] = Floats(shape);
    r.floats["/maps/albedo"] = Floats(albedo);
    r.floats["/pose/angles"] = {0.1f, 0, 0};
    r.doubles["/fit/seconds"] = {1.5};
    r.floats["/metrics/photometric_l21"] = {0.05f * static_cast<float>(pos)};  // the fit's own value (report)
    records.push_back(std::move(r));
  }
  batch::WriteShardFile(path.string(), header, layout, records);
  return path.string();
}

/// The ground truth's albedo is linear and synth writes sRGB-encoded images: an exact fit
/// is only near zero if eval decodes the image (io::BgrToLinearRgb) and measures on sRGB values.
EvalSummary Evaluate(const Corpus& c, const std::string& shard, const fs::path& out) {
  EvalOptions o;
  o.inputs = {shard};
  o.manifests = {c.manifest};
  o.out = out.string();
  o.progress = "none";
  o.threads = 1;
  return RunEval(o);
}

class EvalOnGroundTruth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    corpus_ = new Corpus(IndexSamples(*dir_));
  }
  static void TearDownTestSuite() {
    delete corpus_;
    delete dir_;
  }
  static TempDir* dir_;
  static Corpus* corpus_;
};
TempDir* EvalOnGroundTruth::dir_ = nullptr;
Corpus* EvalOnGroundTruth::corpus_ = nullptr;

TEST_F(EvalOnGroundTruth, ExactFitHasNearZeroErrorsAndPerturbedFitsLargerOnes) {
  const auto& c = *corpus_;
  ASSERT_GE(c.m.OkItems().size(), 3u);
  std::vector<EvalSummary> runs;
  for (double k : {0.0, 1.0, 2.0}) {
    const auto shard = WriteShard(c, *dir_ / fmt::format("k{}.h5", k), k);
    runs.push_back(Evaluate(c, shard, *dir_ / fmt::format("eval-k{}", k)));
  }
  const auto& exact = runs[0];
  std::cout << "exact fits:\n" << exact.Table() << "perturbed k=2:\n" << runs[2].Table();
  ASSERT_EQ(exact.images.size(), c.m.OkItems().size());
  for (const auto& e : exact.images) {
    SCOPED_TRACE(e.id);
    EXPECT_EQ(e.status, "ok") << e.reason;
    EXPECT_EQ(e.yaw_source, "ground_truth");
    EXPECT_EQ(e.landmark_source, "ground_truth");
    // the synthetic image adds sensor noise, JPEG, anti-aliasing and maybe an occluder to the render
    EXPECT_LT(e.l21, 0.06);
    EXPECT_LT(e.nme_io, 1e-3);
    EXPECT_LT(e.nme_bbox, 1e-3);
    EXPECT_LT(e.shape_nme, 1e-5);
  }
  // The exact fit's shapes vary exactly as the truth's (spread ratio 1; a collapsed model's is 0).
  EXPECT_NEAR(exact.shape_spread_ratio, 1.0, 1e-3);
  EXPECT_NEAR(exact.shape_spread_ratio_median, 1.0, 1e-3);
  EXPECT_EQ(exact.shape_spread_images, static_cast<int64_t>(exact.images.size()));
  // l21_unoccluded needs ground truth of version 2 (the samples' is version 1: occluders
  // unknown, NaN by design); its own test is OccludedPixelsLeaveTheUnoccludedError below.
  auto metrics_here = MetricNames();
  metrics_here.erase(std::remove(metrics_here.begin(), metrics_here.end(), "l21_unoccluded"), metrics_here.end());
  for (const auto& e : runs[0].images) EXPECT_TRUE(std::isnan(e.l21_unoccluded)) << e.id;
  for (const auto& m : metrics_here) {
    const double a = runs[0].stats.at(m).at("all").mean, b = runs[1].stats.at(m).at("all").mean,
                 d = runs[2].stats.at(m).at("all").mean;
    EXPECT_LT(a, b) << m;
    EXPECT_LT(b, d) << m;
  }
  // per image too: every metric grows with the perturbation
  for (size_t i = 0; i < exact.images.size(); ++i)
    for (const auto& m : metrics_here) {
      EXPECT_LT(MetricValue(runs[0].images[i], m), MetricValue(runs[1].images[i], m)) << m << " " << exact.images[i].id;
      EXPECT_LT(MetricValue(runs[1].images[i], m), MetricValue(runs[2].images[i], m)) << m << " " << exact.images[i].id;
    }
}

TEST_F(EvalOnGroundTruth, OccludedPixelsLeaveTheUnoccludedError) {
  // A copy of the samples with an occluder painted over one face and recorded in the
  // ground truth (version 2): an exact fit's l21 counts the occluder, l21_unoccluded not.
  const fs::path root = *dir_ / "occluded";
  fs::copy(std::string(FACEBATCH_SAMPLES) + "/AFLW2000", root, fs::copy_options::recursive);
  auto gt = synth::ReadGroundTruth((root / synth::kGroundTruthFileName).string());
  gt.occluder = torch::zeros({gt.size(), 6});
  const int64_t row = 1;
  const auto lm = gt.landmarks[row];
  const float cx = lm.select(1, 0).mean().item<float>(), cy = lm.select(1, 1).mean().item<float>();
  gt.occluder[row] = torch::tensor({1.f, cx, cy, 45.f, 30.f, 20.f});
  const std::string stem = gt.ids[row].substr(gt.ids[row].find('/') + 1);
  const auto image_path = (root / (stem + ".jpg")).string();
  cv::Mat img = cv::imread(image_path);
  ASSERT_FALSE(img.empty()) << image_path;
  img.setTo(cv::Scalar(255, 0, 255), synth::OccluderMask(gt.occluder[row], img.rows, img.cols));
  cv::imwrite(image_path, img, {cv::IMWRITE_JPEG_QUALITY, 100});
  synth::WriteGroundTruth((root / synth::kGroundTruthFileName).string(), gt);
  Corpus c = IndexSamples(*dir_, root.string(), "occluded.jsonl");
  auto s = Evaluate(c, WriteShard(c, *dir_ / "occluded.h5", 0.0), *dir_ / "eval-occluded");
  int checked = 0;
  for (const auto& e : s.images) {
    SCOPED_TRACE(e.id);
    ASSERT_TRUE(std::isfinite(e.l21_unoccluded));
    if (e.id == gt.ids[row]) {
      EXPECT_GT(e.l21, 2 * e.l21_unoccluded);
      EXPECT_LT(e.l21_unoccluded, 0.06);
      ++checked;
    } else {
      EXPECT_NEAR(e.l21_unoccluded, e.l21, 1e-9);  // no occluder: the same pixels
    }
  }
  EXPECT_EQ(checked, 1);
  EXPECT_EQ(s.stats.at("l21_unoccluded").at("all").count, static_cast<int64_t>(s.images.size()));
}

TEST_F(EvalOnGroundTruth, YawBinsPartitionTheImagesAndOutputsAreWritten) {
  const auto& c = *corpus_;
  const auto fail_id = c.m.OkItems().front()->id;
  const auto shard = WriteShard(c, *dir_ / "bins.h5", 0.5, fail_id);
  const auto out = *dir_ / "eval-bins";
  auto s = Evaluate(c, shard, out);
  EXPECT_EQ(s.counts.at("failed"), 1);
  EXPECT_EQ(s.counts.at("failed:diverged"), 1);
  for (const auto& m : MetricNames()) {
    if (m == "l21_unoccluded") continue;  // version-1 ground truth: NaN by design (see above)
    int64_t sum = 0;
    for (const auto& b : YawBins()) sum += s.stats.at(m).at(b).count;
    EXPECT_EQ(sum, s.stats.at(m).at("all").count) << m;  // every image with a value is in exactly one bin
    EXPECT_EQ(s.stats.at(m).at("all").count, static_cast<int64_t>(s.images.size()) - 1) << m;
  }
  for (const auto& e : s.images) {
    const double a = std::abs(e.yaw);
    const auto bin = YawBin(e.yaw);
    EXPECT_TRUE((bin == "0-30" && a < 30) || (bin == "30-60" && a >= 30 && a < 60) || (bin == "60-90" && a >= 60));
    if (e.id == fail_id) {
      EXPECT_EQ(e.status, "failed");
      EXPECT_TRUE(std::isnan(e.l21));
      EXPECT_EQ(e.yaw_source, "ground_truth");  // the yaw is still known
    }
  }
  // CSV: header + one line per image; JSON reads back the same rows
  std::ifstream csv(out / "per_image.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("id,subset,file,status,reason_code,yaw,yaw_source,l21,nme_io,nme_bbox,shape_nme", 0), 0u);
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, static_cast<int>(s.images.size()));
  const auto back = ReadEvalImages(out.string());
  ASSERT_EQ(back.size(), s.images.size());
  for (size_t i = 0; i < back.size(); ++i) {
    EXPECT_EQ(back[i].id, s.images[i].id);
    if (std::isfinite(s.images[i].l21)) EXPECT_DOUBLE_EQ(back[i].l21, s.images[i].l21);
  }
  EXPECT_NE(s.Table().find("shape_nme"), std::string::npos);
}

TEST_F(EvalOnGroundTruth, ReportGroupsFailuresAndFallsBackToTheFitsOwnMetrics) {
  const auto& c = *corpus_;
  const auto fail_id = c.m.OkItems().back()->id;
  const auto shard = WriteShard(c, *dir_ / "report.h5", 1.0, fail_id);
  ReportOptions o;
  o.inputs = {shard};
  o.out = (*dir_ / "qa" / "page.html").string();
  fs::create_directories(*dir_ / "qa");
  o.samples = 2;
  o.worst = 1;
  o.threads = 1;
  auto s = RunReport(o);
  EXPECT_EQ(s.images, static_cast<int64_t>(c.m.OkItems().size()));
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.sheet, 2);
  EXPECT_EQ(s.files_dir, (*dir_ / "qa" / "page_files").string());
  // sheet rows: input, fit, shading, albedo (no proxies stored); the worst fit: input, fit
  EXPECT_EQ(s.pngs, 2 * 4 + 1 * 2);
  int files = 0;
  for (const auto& e : fs::directory_iterator(s.files_dir)) files += e.path().extension() == ".png";
  EXPECT_EQ(files, s.pngs);
  const auto html = facebatch::testing::ReadFile(o.out);
  EXPECT_NE(html.find("proxies not stored"), std::string::npos);
  EXPECT_NE(html.find("/metrics/photometric_l21"), std::string::npos);  // no --eval: the fit's own metrics
  EXPECT_NE(html.find("test: diverged"), std::string::npos);            // failures by reason, with the reason
  EXPECT_NE(html.find(">diverged<"), std::string::npos);
  EXPECT_NE(html.find("steps = 0"), std::string::npos);                 // the fit configuration
  EXPECT_NE(html.find("page_files/sheet000_input.png"), std::string::npos);
  // The input panel shows the image as it is: the model's linear crop sRGB-encoded back gives
  // the 8-bit crop of one of the items (up to the decode/encode rounding).
  {
    const cv::Mat panel = cv::imread((fs::path(s.files_dir) / "sheet000_input.png").string(), cv::IMREAD_COLOR);
    ASSERT_FALSE(panel.empty());
    double best = 1e9;
    for (const auto* item : c.m.OkItems()) {
      const auto source = (fs::path(c.m.header.root) / item->image).string();
      const auto crop = io::CropFace(io::LoadImageBgr(source), item->landmarks, panel.rows);
      cv::Mat diff;
      cv::absdiff(panel, crop.image, diff);
      best = std::min(best, cv::mean(diff)[0] + cv::mean(diff)[1] + cv::mean(diff)[2]);
    }
    EXPECT_LT(best, 1.5);  // a linear crop written without the sRGB encoding is tens of levels darker
  }
  // with an eval: its metrics' histograms
  Evaluate(c, shard, *dir_ / "eval-report");
  o.eval_dir = (*dir_ / "eval-report").string();
  s = RunReport(o);
  const auto html2 = facebatch::testing::ReadFile(o.out);
  EXPECT_NE(html2.find("shape NME / inter-ocular"), std::string::npos);
  EXPECT_EQ(html2.find("/metrics/photometric_l21"), std::string::npos);
  o.eval_dir = (*dir_ / "nothing-here").string();
  EXPECT_THROW(o.Check(), UsageError);
}

TEST_F(EvalOnGroundTruth, ShapeNmeAcrossUvResolutionsAndMissingMaps) {
  const auto& c = *corpus_;
  // The ground truth resampled to the same size is itself: same grid, so a fit at
  // the same resolution compares vertex for vertex.
  auto g = c.gt.shape_uv.slice(0, 0, 1);
  EXPECT_TRUE(torch::equal(ResampleUV(g, c.gt.uv_rows, c.gt.uv_cols), g));
  // Onto another grid: the same UV parameterisation (pixel centres at (c + 0.5) / V), so a
  // map linear in the column index stays linear in u, and a constant stays constant.
  auto ramp = torch::arange(4, torch::kFloat32).add(0.5).div(4).view({1, 1, 1, 4}).expand({1, 1, 2, 4}).contiguous();
  auto up = ResampleUV(ramp, 4, 8);
  ASSERT_EQ(up.sizes(), (std::vector<int64_t>{1, 1, 4, 8}));
  for (int col = 2; col < 6; ++col)  // inside (no border clamping): value = u of the new pixel centre
    EXPECT_NEAR(up[0][0][1][col].item<float>(), (col + 0.5f) / 8, 1e-6);
  EXPECT_TRUE(torch::allclose(ResampleUV(torch::full({1, 3, 6, 7}, 2.5), 12, 14), torch::full({1, 3, 12, 14}, 2.5)));
  // A file without /maps/albedo is refused with its name.
  const auto path = (*dir_ / "nomaps.h5").string();
  {
    const auto tmpl = render::DefaultTemplate(c.gt.uv_rows, c.gt.uv_cols);
    batch::LayoutSizes sizes;
    sizes.latent_shape = 2, sizes.latent_albedo = 2, sizes.uv_rows = c.gt.uv_rows, sizes.uv_cols = c.gt.uv_cols;
    sizes.num_vertices = tmpl.topology.num_vertices(), sizes.num_triangles = tmpl.topology.num_triangles();
    sizes.terms = {"total"};
    batch::WriteShardFile(path, MakeHeader(tmpl.topology), batch::ShardLayout::Make(sizes, batch::ParseOutputs("shape"), false), {});
  }
  try {
    Evaluate(c, path, *dir_ / "eval-nomaps");
    FAIL() << "expected an InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nomaps.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/maps/albedo"), std::string::npos) << e.what();
  }
  EvalOptions bad;
  EXPECT_THROW(bad.Check(), UsageError);
}

}  // namespace
}  // namespace facebatch::eval

namespace facebatch::eval {
namespace {

TEST(YawBins, PartitionImagesOverEveryPose) {
  EvalSummary s;
  const std::vector<double> yaws = {-89, -61, -60, -45, -30, -29.9, -5, 0, 12, 29.99, 30, 59, 60, 75, 95};
  for (size_t i = 0; i < yaws.size(); ++i) {
    ImageEval e;
    e.id = "img" + std::to_string(i);
    e.yaw = yaws[i];
    e.l21 = 0.01 * static_cast<double>(i);
    e.nme_io = e.nme_bbox = e.shape_nme = std::nan("");
    s.images.push_back(e);
  }
  ImageEval unknown;  // no yaw: counted overall, in no bin
  unknown.yaw = std::nan("");
  unknown.l21 = 1;
  s.images.push_back(unknown);
  SummariseImages(s);
  const auto& l21 = s.stats.at("l21");
  EXPECT_EQ(l21.at("all").count, 16);
  EXPECT_EQ(l21.at("0-30").count, 5);   // -29.9, -5, 0, 12, 29.99
  EXPECT_EQ(l21.at("30-60").count, 4);  // -45, -30, 30, 59
  EXPECT_EQ(l21.at("60-90").count, 6);  // -89, -61, -60, 60, 75, 95
  EXPECT_EQ(l21.at("0-30").count + l21.at("30-60").count + l21.at("60-90").count, 15);
  // the bin means are the means of their members: 0-30 holds images 5..9 -> l21 0.05..0.09
  EXPECT_NEAR(l21.at("0-30").mean, 0.07, 1e-12);
  EXPECT_EQ(s.stats.at("shape_nme").at("all").count, 0);
  EXPECT_TRUE(std::isnan(s.stats.at("shape_nme").at("all").mean));
  EXPECT_EQ(YawBin(std::nan("")), "");
}

}  // namespace
}  // namespace facebatch::eval
