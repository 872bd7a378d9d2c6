#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Corpus.h"
#include "io/Detect.h"
#include "io/Item.h"
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

// dlib on the drawn sample faces: one face per sample image, two in the pair image,
// landmarks close to the generator's ground truth; no face in a flat or noise image.
TEST(Index, DlibDetectorFindsDrawnFacesAndRecordsNoFace) {
  if (!DlibAvailable()) GTEST_SKIP() << "built without dlib";
  if (!fs::exists(kDefaultShapePredictor)) GTEST_SKIP() << "no dlib model";
  TempDir dir;
  fs::create_directories(dir / "imgs");
  cv::imwrite((dir / "imgs/flat.png").string(), cv::Mat(120, 160, CV_8UC3, cv::Scalar(90, 120, 150)));
  cv::Mat noise(120, 160, CV_8UC3);
  cv::randu(noise, 0, 255);
  cv::imwrite((dir / "imgs/noise.png").string(), noise);
  fs::copy_file(kSamples / "AFLW2000/image00002.jpg", dir / "imgs/image00002.jpg");
  fs::copy_file(kSamples / "folder/group/pair.jpg", dir / "imgs/pair.jpg");
  IndexOptions o;
  o.root = (dir / "imgs").string();
  o.out = (dir / "m.jsonl").string();
  o.corpus = "folder";
  o.detect = "dlib";
  o.progress = "none";
  o.threads = 2;
  IndexSummary s = RunIndex(o);
  EXPECT_EQ(s.total, 5);
  EXPECT_EQ(s.failures_by_reason.at(reason::kNoFace), 2);
  Manifest m = ReadManifest(o.out);
  std::map<std::string, const Item*> by_id;
  for (const Item& it : m.items) by_id[it.id] = &it;
  ASSERT_TRUE(by_id.count("folder/flat"));
  EXPECT_NE(by_id["folder/flat"]->reason.find("flat.png: no face found"), std::string::npos);
  ASSERT_TRUE(by_id.count("folder/pair") && by_id.count("folder/pair#1")) << s.ToString();
  ASSERT_TRUE(by_id.count("folder/image00002"));

  // Compare with ground truth: eye centres within 0.15 inter-ocular distances.
  auto check = [&](const Item& detected, const Landmarks& truth) {
    ASSERT_TRUE(detected.ok()) << detected.reason;
    ASSERT_EQ(detected.landmarks.points.size(), 68u);
    ASSERT_EQ(detected.bbox.size(), 4u);
    Landmarks t5 = truth.convention == LandmarkConvention::kFive ? truth : FiveFrom68(truth);
    Landmarks d5 = FiveFrom68(detected.landmarks);
    double iod = std::hypot(t5.points[1].x - t5.points[0].x, t5.points[1].y - t5.points[0].y);
    for (int e = 0; e < 2; ++e)
      EXPECT_LT(std::hypot(d5.points[e].x - t5.points[e].x, d5.points[e].y - t5.points[e].y), 0.15 * iod)
          << detected.id << " eye " << e;
  };
  auto truth_of = [&](const fs::path& root, const std::string& corpus, const std::string& id) {
    for (const Item& it : ReadCorpus(ParseCorpusKind(corpus), root.string(), {}))
      if (it.id == id) return it.landmarks;
    throw std::runtime_error("no " + id);
  };
  check(*by_id["folder/image00002"], truth_of(kSamples / "AFLW2000", "aflw2000", "aflw2000/image00002"));
  // Detected faces are ordered left to right, like the .pts records of the sample.
  check(*by_id["folder/pair"], truth_of(kSamples / "folder", "folder", "folder/group/pair"));
  check(*by_id["folder/pair#1"], truth_of(kSamples / "folder", "folder", "folder/group/pair#1"));
}

}  // namespace
}  // namespace facebatch::io
