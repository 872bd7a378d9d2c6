#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <filesystem>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Detect.h"
#include "io/Index.h"
#include "io/Manifest.h"
#include "io/Shard.h"

namespace facebatch::io {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::TempDir;
const fs::path kSamples = FACEBATCH_SAMPLES;

IndexSummary Index(const fs::path& root, const fs::path& out, int threads, const std::string& corpus = "auto") {
  IndexOptions o;
  o.root = root.string();
  o.out = out.string();
  o.corpus = corpus;
  o.threads = threads;
  o.progress = "none";
  return RunIndex(o);
}

TEST(Index, EverySampleCorpusIsDeterministicAcrossThreadCounts) {
  TempDir dir;
  const std::map<std::string, std::pair<std::string, int>> corpora = {
      {"300W-LP", {"300w-lp", 12}}, {"AFLW2000", {"aflw2000", 4}}, {"CelebA", {"celeba", 6}}, {"folder", {"folder", 4}}};
  for (const auto& [name, expect] : corpora) {
    IndexSummary one = Index(kSamples / name, dir / (name + "-1.jsonl"), 1);
    IndexSummary two = Index(kSamples / name, dir / (name + "-2.jsonl"), 2);
    EXPECT_EQ(one.corpus, expect.first);
    EXPECT_EQ(one.total, expect.second) << name;
    EXPECT_EQ(one.ok, expect.second) << name;
    EXPECT_EQ(one.ExitCode(), kExitOk);
    EXPECT_EQ(one.items_hash, two.items_hash) << name;
    Manifest m = ReadManifest((dir / (name + "-2.jsonl")).string());
    EXPECT_EQ(m.header.items_hash, one.items_hash);
    EXPECT_EQ(m.header.corpus, expect.first);
    EXPECT_EQ(fs::path(m.header.root), fs::absolute(kSamples / name).lexically_normal());
    EXPECT_EQ(static_cast<int>(m.items.size()), expect.second);
    for (size_t i = 1; i < m.items.size(); ++i) EXPECT_LT(m.items[i - 1].id, m.items[i].id);
  }
}

TEST(Index, FailuresAreCountedAndTheRunGoesOn) {
  TempDir dir;
  fs::copy(kSamples / "folder", dir / "folder", fs::copy_options::recursive);
  facebatch::testing::WriteFile(dir / "folder/broken.jpg", "not an image");
  facebatch::testing::WriteFile(dir / "folder/broken.pts", "");
  cv::imwrite((dir / "folder/bare.png").string(), cv::Mat(50, 50, CV_8UC3, cv::Scalar(9, 9, 9)));
  IndexSummary s = Index(dir / "folder", dir / "m.jsonl", 2, "folder");
  EXPECT_EQ(s.total, 6);
  EXPECT_EQ(s.ok, 4);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.failures_by_reason.at(reason::kCorruptImage), 1);
  EXPECT_EQ(s.failures_by_reason.at(reason::kNoLandmarks), 1);
  EXPECT_EQ(s.ExitCode(), kExitSomeFailed);
  EXPECT_NE(s.ToString().find("no_landmarks"), std::string::npos);
  Manifest m = ReadManifest((dir / "m.jsonl").string());
  EXPECT_EQ(m.header.counts.at("failed:corrupt_image"), 1);
  // Only ok items are sharded.
  size_t sharded = 0;
  for (int k = 0; k < 3; ++k) sharded += SelectShard(m, ShardSpec{k, 3}).size();
  EXPECT_EQ(sharded, 4u);
}

TEST(Index, OptionsAreChecked) {
  IndexOptions o;
  EXPECT_THROW(o.Check(), UsageError);  // no root
  o.root = "x";
  o.out = "y";
  o.Check();
  o.corpus = "lfw";
  EXPECT_THROW(o.Check(), UsageError);
  o.corpus = "auto";
  o.partition = "dev";
  EXPECT_THROW(o.Check(), UsageError);
  o.partition = "all";
  o.landmark_origin = 2;
  EXPECT_THROW(o.Check(), UsageError);
  o.landmark_origin = 0;
  o.detect = "mtcnn";
  EXPECT_THROW(o.Check(), UsageError);
}

TEST(Index, DlibDetectorRecordsNoFace) {
  if (!DlibAvailable()) GTEST_SKIP() << "built without dlib";
  if (!fs::exists(kDefaultShapePredictor)) GTEST_SKIP() << "no dlib model";
  TempDir dir;
  fs::create_directories(dir / "imgs");
  // A flat image and smooth noise: nothing face-like.
  cv::imwrite((dir / "imgs/flat.png").string(), cv::Mat(120, 160, CV_8UC3, cv::Scalar(90, 120, 150)));
  cv::Mat noise(120, 160, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::imwrite((dir / "imgs/noise.png").string(), noise);
  IndexOptions o;
  o.root = (dir / "imgs").string();
  o.out = (dir / "m.jsonl").string();
  o.detect = "dlib";
  o.progress = "none";
  o.threads = 2;
  IndexSummary s = RunIndex(o);
  EXPECT_EQ(s.total, 2);
  EXPECT_EQ(s.failures_by_reason.at(reason::kNoFace), 2);
  Manifest m = ReadManifest(o.out);
  EXPECT_NE(m.items[0].reason.find("flat.png: no face found"), std::string::npos) << m.items[0].reason;
}

}  // namespace
}  // namespace facebatch::io
