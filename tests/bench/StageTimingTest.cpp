// The per-stage timings `facebatch bench` reads (issue 9): fit::FitTiming's split of the
// optimiser loop and the fit job's FitJobSummary::stage_seconds / peak RSS, on a tiny
// model. Never asserts speed: only that every stage is measured and the split is consistent.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "batch/FitJob.h"
#include "bench/Bench.h"
#include "core/Error.h"
#include "fit/Fitter.h"
#include "io/Crop.h"
#include "io/Manifest.h"
#include "model/FaceModel.h"
#include "model/SyntheticTemplate.h"

namespace facebatch {
namespace {
namespace fs = std::filesystem;

model::FaceModel TinyModel() {
  const auto c = model::testutil::SmallFitConfig();
  return model::FaceModel::Create(c, model::SyntheticTemplate(c.uv_rows, c.uv_cols), 11);
}

TEST(StageTiming, FitterSplitsTheOptimiserLoop) {
  torch::manual_seed(3);
  auto m = TinyModel();
  fit::FitOptions o;
  o.schedule = "joint";  // one stage: the iteration count is exactly `steps`
  o.steps = 4;
  o.relative_tolerance = 0;  // no early exit
  o.synchronize_timing = true;  // no-op on the CPU, must not break anything
  fit::Fitter fitter(m, o);
  const int64_t B = 3, S = m.config().image_size;
  std::vector<std::vector<std::array<double, 2>>> pts(B);
  for (auto& p : pts)
    for (const auto& q : io::CropTemplate(io::LandmarkConvention::kIbug68, static_cast<int>(S))) p.push_back({q.x, q.y});
  auto [lm, lw] = fit::PackLandmarks(pts, S, S);
  auto r = fitter.Fit(torch::rand({B, 3, S, S}), lm, lw);
  const auto& t = fitter.timing();
  EXPECT_EQ(t.iterations, 4);
  EXPECT_GE(t.objective_calls, 5);
  for (double v : {t.encode, t.decode, t.render, t.losses, t.backward, t.optimise, t.finish}) EXPECT_GT(v, 0.0);
  // decode + render + losses is exactly the objective time; objective + backward fit in the loop.
  EXPECT_NEAR(t.decode + t.render + t.losses, t.objective, 1e-9);
  EXPECT_LE(t.objective + t.backward, t.optimise);
  // A second fit accumulates.
  const auto before = t;
  fitter.Fit(torch::rand({B, 3, S, S}), lm, lw);
  EXPECT_EQ(fitter.timing().iterations, 8);
  EXPECT_GT(fitter.timing().decode, before.decode);
}

TEST(StageTiming, FitJobReportsItsStagesAndPeakMemory) {
  testing::TempDir dir;
  auto m = TinyModel();
  m.Save((dir / "model.h5").string());
  fs::create_directories(dir / "images");
  io::Manifest man;
  man.header.corpus = "folder";
  man.header.root = (dir / "images").string();
  cv::RNG rng(4);
  for (int i = 0; i < 5; ++i) {
    io::Item it;
    it.id = "folder/img" + std::to_string(i);
    it.image = "img" + std::to_string(i) + ".png";
    it.corpus = "folder";
    it.width = it.height = 96;
    it.landmarks.convention = io::LandmarkConvention::kIbug68;
    for (auto p : io::CropTemplate(io::LandmarkConvention::kIbug68, 80)) it.landmarks.points.push_back({p.x + 8, p.y + 8});
    cv::Mat img(96, 96, CV_8UC3);
    rng.fill(img, cv::RNG::UNIFORM, 0, 255);
    cv::imwrite((dir / "images" / it.image).string(), img);
    man.items.push_back(it);
  }
  io::WriteManifest((dir / "m.jsonl").string(), man);
  batch::FitJobOptions o;
  o.manifest = (dir / "m.jsonl").string();
  o.model = (dir / "model.h5").string();
  o.out = (dir / "out").string();
  o.batch = 2;
  o.part_size = 2;
  o.threads = 1;
  o.progress = "none";
  o.fit.steps = 2;
  auto s = batch::RunFitJob(o);
  ASSERT_TRUE(s.complete);
  EXPECT_EQ(s.processed, 5);
  for (const char* k : {"load", "encode", "iterations", "finish", "records", "write"}) {
    ASSERT_TRUE(s.stage_seconds.count(k)) << k;
    EXPECT_GT(s.stage_seconds.at(k), 0.0) << k;
  }
  // The fit worker's stages happen inside its busy time.
  EXPECT_LE(s.stage_seconds.at("encode") + s.stage_seconds.at("iterations") + s.stage_seconds.at("finish") +
                s.stage_seconds.at("records"),
            s.seconds);
  EXPECT_GT(s.peak_rss_mib, 10.0);
  EXPECT_LE(s.peak_rss_mib, batch::PeakRssMiB());  // the process peak only grows
}

TEST(StageTiming, ThreadLists) {
  EXPECT_EQ(bench::ParseThreadList("max", 1), (std::vector<int>{1}));
  EXPECT_EQ(bench::ParseThreadList("max", 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(bench::ParseThreadList("max", 6), (std::vector<int>{1, 2, 4, 6}));
  EXPECT_EQ(bench::ParseThreadList("max", 8), (std::vector<int>{1, 2, 4, 8}));
  EXPECT_EQ(bench::ParseThreadList("3,1", 8), (std::vector<int>{3, 1}));
  EXPECT_THROW(bench::ParseThreadList("0", 8), UsageError);
  EXPECT_THROW(bench::ParseThreadList("2,", 8), UsageError);
  EXPECT_THROW(bench::ParseThreadList("two", 8), UsageError);
  EXPECT_THROW(bench::ParseThreadList("", 8), UsageError);
}

}  // namespace
}  // namespace facebatch
