// Corpus readers on the committed samples (samples/, written by `facebatch make-samples --seed 1`).
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <filesystem>

#include "TestSupport.h"
#include "io/Corpus.h"
#include "io/Landmarks.h"
#include "io/MatFile.h"
#include "io/SampleCorpora.h"

namespace facebatch::io {
namespace {
namespace fs = std::filesystem;
const fs::path kSamples = FACEBATCH_SAMPLES;

std::vector<Item> Read(CorpusKind k, const fs::path& root, ReadOptions o = {}) {
  return ReadCorpus(k, root.string(), o);
}

// The iris is drawn dark at the mean of each eye contour: checks that image and landmarks agree.
void ExpectIrisAtLandmarks(const fs::path& root, const Item& it) {
  cv::Mat img = cv::imread((root / it.image).string());
  ASSERT_FALSE(img.empty());
  Landmarks five = it.landmarks.convention == LandmarkConvention::kFive ? it.landmarks : FiveFrom68(it.landmarks);
  for (int e = 0; e < 2; ++e) {
    cv::Vec3b px = img.at<cv::Vec3b>(static_cast<int>(std::lround(five.points[e].y)),
                                     static_cast<int>(std::lround(five.points[e].x)));
    EXPECT_LT(px[0] + px[1] + px[2], 3 * 110) << it.id << " eye " << e;
  }
}

TEST(Corpus, DetectsEverySampleLayout) {
  EXPECT_EQ(DetectCorpusKind((kSamples / "300W-LP").string()), CorpusKind::k300wLp);
  EXPECT_EQ(DetectCorpusKind((kSamples / "AFLW2000").string()), CorpusKind::kAflw2000);
  EXPECT_EQ(DetectCorpusKind((kSamples / "CelebA").string()), CorpusKind::kCeleba);
  EXPECT_EQ(DetectCorpusKind((kSamples / "folder").string()), CorpusKind::kFolder);
}

TEST(Corpus, Reads300wLpSample) {
  const fs::path root = kSamples / "300W-LP";
  auto items = Read(CorpusKind::k300wLp, root);
  ASSERT_EQ(items.size(), 12u);
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    ASSERT_TRUE(it.ok()) << it.id << ": " << it.reason;
    if (i) EXPECT_LT(items[i - 1].id, it.id);
    EXPECT_EQ(it.corpus, "300w-lp");
    EXPECT_EQ(it.id, "300w-lp/" + fs::path(it.image).replace_extension().generic_string());
    EXPECT_EQ(it.width, 450);
    EXPECT_EQ(it.landmarks.convention, LandmarkConvention::kIbug68);
    // Landmarks are pt2d's rows (x row, y row), origin 0.
    MatFile mat((root / fs::path(it.image).replace_extension(".mat")).string());
    MatArray pt2d = mat.Read("pt2d");
    ASSERT_EQ(pt2d.dims, (std::vector<size_t>{2, 68}));
    for (int j = 0; j < 68; ++j) {
      EXPECT_EQ(it.landmarks.points[j].x, pt2d.at(0, j));
      EXPECT_EQ(it.landmarks.points[j].y, pt2d.at(1, j));
    }
    // Ground truth with MATLAB classes as in the real corpus.
    EXPECT_EQ(it.ground_truth.at("Pose_Para").mat_class, "single");
    EXPECT_EQ(it.ground_truth.at("Pose_Para").dims, (std::vector<size_t>{1, 7}));
    EXPECT_EQ(it.ground_truth.at("Shape_Para").dims, (std::vector<size_t>{199, 1}));
    EXPECT_EQ(it.ground_truth.at("Exp_Para").dims, (std::vector<size_t>{29, 1}));
    EXPECT_EQ(it.ground_truth.at("Color_Para").mat_class, "single");
    EXPECT_EQ(it.ground_truth.at("Illum_Para").dims, (std::vector<size_t>{1, 10}));
    EXPECT_EQ(it.ground_truth.at("Tex_Para").dims, (std::vector<size_t>{199, 1}));
    EXPECT_EQ(it.ground_truth.at("roi").mat_class, "int16");
    EXPECT_EQ(it.ground_truth.at("Pose_Para").values, mat.Read("Pose_Para").values);
    bool afw = it.subset == "AFW";
    EXPECT_EQ(it.ground_truth.count("pts_3d"), afw ? 1u : 0u) << it.id;
    ExpectIrisAtLandmarks(root, it);
  }
  // A _Flip item is its original mirrored, with iBUG partner points swapped.
  const Item* orig = nullptr;
  const Item* flip = nullptr;
  for (const Item& it : items) {
    if (it.subset == "HELEN" && !orig) orig = &it;
  }
  for (const Item& it : items)
    if (it.subset == "HELEN_Flip" && fs::path(it.image).filename() == fs::path(orig->image).filename()) flip = &it;
  ASSERT_TRUE(orig && flip);
  auto mirrored = FlipLandmarks68(orig->landmarks.points, orig->width);
  for (int j = 0; j < 68; ++j) {
    EXPECT_NEAR(flip->landmarks.points[j].x, mirrored[j].x, 1e-9);
    EXPECT_NEAR(flip->landmarks.points[j].y, mirrored[j].y, 1e-9);
  }
  // The origin option shifts every coordinate.
  ReadOptions one;
  one.landmark_origin = 1;
  auto shifted = Read(CorpusKind::k300wLp, root, one);
  EXPECT_EQ(shifted[0].landmarks.origin, 1);
  EXPECT_DOUBLE_EQ(shifted[0].landmarks.points[5].x, items[0].landmarks.points[5].x - 1);
  EXPECT_DOUBLE_EQ(shifted[0].landmarks.points[5].y, items[0].landmarks.points[5].y - 1);
}

TEST(Corpus, ReadsAflw2000Sample) {
  const fs::path root = kSamples / "AFLW2000";
  auto items = Read(CorpusKind::kAflw2000, root);
  ASSERT_EQ(items.size(), 4u);
  for (const Item& it : items) {
    ASSERT_TRUE(it.ok()) << it.reason;
    const MatArray& pt3d = it.ground_truth.at("pt3d_68");
    ASSERT_EQ(pt3d.dims, (std::vector<size_t>{3, 68}));
    for (int j = 0; j < 68; ++j) {
      EXPECT_EQ(it.landmarks.points[j].x, pt3d.at(0, j));
      EXPECT_EQ(it.landmarks.points[j].y, pt3d.at(1, j));
    }
    EXPECT_EQ(it.ground_truth.count("Shape_Para"), 1u);
    ExpectIrisAtLandmarks(root, it);
  }
  EXPECT_EQ(items[0].id, "aflw2000/image00002");
}

TEST(Corpus, ReadsCelebaSampleWithPartitions) {
  const fs::path root = kSamples / "CelebA";
  auto items = Read(CorpusKind::kCeleba, root);
  ASSERT_EQ(items.size(), 6u);
  std::map<std::string, int> parts;
  for (const Item& it : items) {
    ASSERT_TRUE(it.ok()) << it.reason;
    EXPECT_EQ(it.width, 178);
    EXPECT_EQ(it.height, 218);
    EXPECT_EQ(it.landmarks.convention, LandmarkConvention::kFive);
    EXPECT_GT(it.identity, 0);
    ++parts[it.partition];
    ExpectIrisAtLandmarks(root, it);
  }
  EXPECT_EQ(parts["train"], 4);
  EXPECT_EQ(parts["val"], 1);
  EXPECT_EQ(parts["test"], 1);
  EXPECT_EQ(items[0].id, "celeba/img_align_celeba/000001");
  // Landmarks equal the list's numbers (first row).
  std::string list = facebatch::testing::ReadFile(root / "list_landmarks_align_celeba.txt");
  std::istringstream ss(list.substr(list.find("000001.jpg")));
  std::string name;
  ss >> name;
  for (int p = 0; p < 5; ++p) {
    double x, y;
    ss >> x >> y;
    EXPECT_EQ(items[0].landmarks.points[p].x, x);
    EXPECT_EQ(items[0].landmarks.points[p].y, y);
  }
  ReadOptions test;
  test.partition = "test";
  auto t = Read(CorpusKind::kCeleba, root, test);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].partition, "test");
}

TEST(Corpus, ReadsCelebaInTheWildWithBoxes) {
  facebatch::testing::TempDir dir;
  fs::create_directories(dir / "img_celeba");
  for (const char* n : {"000001.jpg", "000002.jpg"})
    fs::copy_file(kSamples / "CelebA/img_align_celeba" / n, dir / "img_celeba" / n);
  facebatch::testing::WriteFile(dir / "list_landmarks_celeba.txt",
                                "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
                                "rightmouth_x rightmouth_y\n000001.jpg 60 110 100 110 80 130 65 150 95 150\n"
                                "000002.jpg 61 111 101 111 81 131 66 151 96 151\n");
  facebatch::testing::WriteFile(dir / "list_bbox_celeba.txt",
                                "2\nimage_id x_1 y_1 width height\n000001.jpg    10   20  100  120\n"
                                "000002.jpg 11 21 101 121\n");
  EXPECT_EQ(DetectCorpusKind(dir.path().string()), CorpusKind::kCeleba);
  ReadOptions one;
  one.landmark_origin = 1;
  auto items = Read(CorpusKind::kCeleba, dir.path(), one);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_TRUE(items[0].ok()) << items[0].reason;
  EXPECT_EQ(items[0].id, "celeba/img_celeba/000001");
  EXPECT_EQ(items[0].subset, "wild");
  EXPECT_EQ(items[0].bbox, (std::vector<double>{9, 19, 109, 139}));
  EXPECT_EQ(items[0].landmarks.points[0].x, 59);
  EXPECT_EQ(items[1].landmarks.points[4].y, 150);
}

TEST(Corpus, ReadsFolderSampleWithSeveralFaces) {
  const fs::path root = kSamples / "folder";
  auto items = Read(CorpusKind::kFolder, root);
  ASSERT_EQ(items.size(), 4u);
  std::vector<std::string> ids;
  for (const Item& it : items) {
    EXPECT_TRUE(it.ok()) << it.reason;
    ids.push_back(it.id);
    ExpectIrisAtLandmarks(root, it);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"folder/five", "folder/group/pair", "folder/group/pair#1",
                                           "folder/portrait"}));
  EXPECT_EQ(items[0].landmarks.convention, LandmarkConvention::kFive);
  EXPECT_EQ(items[2].face, 1);
  EXPECT_EQ(items[2].image, "group/pair.jpg");
}

TEST(Corpus, SampleGeneratorIsDeterministic) {
  facebatch::testing::TempDir a, b, c;
  for (auto* d : {&a, &b}) {
    SampleOptions o;
    o.out = d->path().string();
    o.seed = 3;
    o.corpora = "celeba,folder";
    MakeSamples(o);
  }
  SampleOptions o;
  o.out = c.path().string();
  o.seed = 4;
  o.corpora = "celeba";
  MakeSamples(o);
  using facebatch::testing::ReadFile;
  EXPECT_EQ(ReadFile(a / "CelebA/img_align_celeba/000002.jpg"), ReadFile(b / "CelebA/img_align_celeba/000002.jpg"));
  EXPECT_EQ(ReadFile(a / "folder/portrait.pts"), ReadFile(b / "folder/portrait.pts"));
  EXPECT_NE(ReadFile(a / "CelebA/list_landmarks_align_celeba.txt"),
            ReadFile(c / "CelebA/list_landmarks_align_celeba.txt"));
  EXPECT_FALSE(fs::exists(a / "300W-LP"));
}

}  // namespace
}  // namespace facebatch::io
