#pragma once
// Fit output directories for the merge and status tests, built by the real
// pipeline: a folder corpus of seeded noise images with 5-point .pts files,
// indexed by `facebatch index`, fitted shard by shard by `facebatch fit`
// with a tiny model (64 px crops, 24 x 28 UV). One image is deleted after
// indexing, so its shard records a failed item (missing_image).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <string>
#include <vector>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "model/FaceModel.h"
#include "model/SyntheticTemplate.h"

namespace facebatch::batch::merge_test {

namespace fs = std::filesystem;

struct FitFixture {
  fs::path root;      ///< the temp dir
  fs::path manifest;  ///< root/m.jsonl
  fs::path model;     ///< root/model.h5
  int images = 0;     ///< ok items of the manifest (the deleted one included)
};

inline void WriteTinyModel(const fs::path& path) {
  const auto c = model::testutil::SmallFitConfig();
  model::FaceModel::Create(c, model::SyntheticTemplate(c.uv_rows, c.uv_cols), 11).Save(path.string());
}

/// `n` images img00.png.. with 5 landmarks each; img03 is deleted after indexing.
inline FitFixture MakeFitFixture(const fs::path& root, int n) {
  FitFixture f;
  f.root = root;
  f.manifest = root / "m.jsonl";
  f.model = root / "model.h5";
  f.images = n;
  WriteTinyModel(f.model);
  const fs::path images = root / "images";
  fs::create_directories(images);
  std::mt19937 rng(17);
  std::uniform_real_distribution<double> jitter(-3.0, 3.0);
  const double base[5][2] = {{45, 55}, {83, 55}, {64, 75}, {50, 95}, {78, 95}};
  for (int i = 0; i < n; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "img%02d", i);
    cv::Mat img(128, 128, CV_8UC3);
    cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::imwrite((images / (std::string(name) + ".png")).string(), img);
    std::ofstream pts(images / (std::string(name) + ".pts"));
    pts << "version: 1\nn_points: 5\n{\n";
    for (const auto& p : base) pts << p[0] + jitter(rng) << " " << p[1] + jitter(rng) << "\n";
    pts << "}\n";
  }
  auto r = testing::RunCli({"index", "--root", images.string(), "--corpus", "folder", "--out", f.manifest.string(),
                            "--progress", "none", "--threads", "1"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (n > 3) fs::remove(images / "img03.png");  // a failed item at fit time
  return f;
}

/// The fit command of shard index/count; `overrides` are (--option, value) pairs replacing the defaults.
inline std::vector<std::string> FitArgs(const FitFixture& f, const fs::path& out, int index, int count,
                                        const std::vector<std::string>& overrides = {}) {
  std::map<std::string, std::string> opts = {
      {"--manifest", f.manifest.string()}, {"--model", f.model.string()}, {"--out", out.string()},
      {"--shard", std::to_string(index) + "/" + std::to_string(count)}, {"--progress", "none"}, {"--threads", "1"},
      {"--steps", "1"}, {"--batch", "2"}, {"--part-size", "2"}};
  for (size_t i = 0; i + 1 < overrides.size(); i += 2) opts[overrides[i]] = overrides[i + 1];
  std::vector<std::string> a = {"fit"};
  for (const auto& [k, v] : opts) a.push_back(k), a.push_back(v);
  return a;
}

/// Runs `facebatch fit` on shard index/count to completion (exit 0, or 3 with the failed item).
inline void FitShard(const FitFixture& f, const fs::path& out, int index, int count) {
  auto r = testing::RunCli(FitArgs(f, out, index, count));
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.output;
}

}  // namespace facebatch::batch::merge_test
