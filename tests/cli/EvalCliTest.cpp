// `facebatch eval` end to end: fits of images rendered from known ground truth
// (samples/AFLW2000) give finite metrics for every image, per image and summarised.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "EvalFixture.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(EvalCli, FitsOfSyntheticImagesGiveFiniteMetrics) {
  testing::EvalPipeline p;
  ASSERT_TRUE(p.Run());
  for (const char* s : {"l21", "nme_io", "nme_bbox", "shape_nme", "0-30", "30-60", "60-90", "median", "p95"})
    EXPECT_NE(p.eval.output.find(s), std::string::npos) << s << "\n" << p.eval.output;
  std::ifstream in(p.eval_dir + "/summary.json");
  ASSERT_TRUE(in.good());
  nlohmann::json j;
  in >> j;
  EXPECT_EQ(j["format"], "facebatch-eval");
  EXPECT_EQ(j["schema_version"], 1);
  ASSERT_EQ(j["images"].size(), 4u);
  for (const auto& e : j["images"]) {
    SCOPED_TRACE(e.dump());
    EXPECT_EQ(e["status"], "ok");
    EXPECT_EQ(e["yaw_source"], "ground_truth");
    EXPECT_EQ(e["landmark_source"], "ground_truth");
    for (const char* m : {"l21", "nme_io", "nme_bbox", "shape_nme"}) {
      ASSERT_TRUE(e[m].is_number()) << m;
      EXPECT_TRUE(std::isfinite(e[m].get<double>())) << m;
      EXPECT_GE(e[m].get<double>(), 0.0) << m;
    }
    EXPECT_LT(e["l21"].get<double>(), std::sqrt(3.0));  // images in [0, 1]
  }
  for (const char* m : {"l21", "nme_io", "nme_bbox", "shape_nme"}) {
    const auto& all = j["metrics"][m]["all"];
    EXPECT_EQ(all["count"], 4) << m;
    int bins = 0;
    for (const char* b : {"0-30", "30-60", "60-90"}) bins += j["metrics"][m][b]["count"].get<int>();
    EXPECT_EQ(bins, 4) << m;  // the yaw bins partition the images
    EXPECT_LE(all["median"].get<double>(), all["p90"].get<double>()) << m;
    EXPECT_LE(all["p90"].get<double>(), all["p95"].get<double>()) << m;
  }
  std::ifstream csv(p.eval_dir + "/per_image.csv");
  std::stringstream ss;
  ss << csv.rdbuf();
  const auto text = ss.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5) << text;  // header + 4 images
  EXPECT_NE(text.find("aflw2000/image00002"), std::string::npos) << text;
}

TEST(EvalCli, UsageErrorsAndMissingFiles) {
  testing::TempDir dir;
  auto r = RunCli({"eval", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--ground-truth"), std::string::npos) << r.output;
  r = RunCli({"eval", "x.h5", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // no --manifest
  r = RunCli({"eval", "x.h5", "--manifest", "m.jsonl", "--out", (dir / "o").string(), "--shape-alignment", "rigid"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const auto missing = (dir / "missing.h5").string();
  r = RunCli({"eval", missing, "--manifest", "m.jsonl", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.h5"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
