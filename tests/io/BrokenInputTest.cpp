// Every broken-input case ends in a recorded reason (or, for a whole-run problem, a
// clear InputError naming the path), never a crash.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Corpus.h"
#include "io/Image.h"
#include "io/Landmarks.h"
#include "io/MatFile.h"

namespace facebatch::io {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::ReadFile;
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;
const fs::path kSamples = FACEBATCH_SAMPLES;

fs::path CopySample(const TempDir& dir, const std::string& name) {
  fs::copy(kSamples / name, dir / name, fs::copy_options::recursive);
  return dir / name;
}

const Item& Find(const std::vector<Item>& items, const std::string& id) {
  for (const Item& it : items)
    if (it.id == id) return it;
  throw std::runtime_error("no item " + id);
}

void ExpectFailed(const Item& it, const std::string& code, const std::string& needle) {
  EXPECT_FALSE(it.ok()) << it.id;
  EXPECT_EQ(it.reason_code, code) << it.id << ": " << it.reason;
  EXPECT_NE(it.reason.find(needle), std::string::npos) << it.id << ": '" << it.reason << "' lacks '" << needle << "'";
}

std::string Landmark68Pts(double dx = 0) {
  Landmarks l;
  l.convention = LandmarkConvention::kIbug68;
  for (const Point2& p : CanonicalFace68()) l.points.push_back({100 + 60 * p.x + dx, 100 + 60 * p.y});
  TempDir d;
  WritePtsFile((d / "x.pts").string(), {l}, 0);
  return ReadFile(d / "x.pts");
}

TEST(BrokenInput, ImagesInAFolderCorpus) {
  TempDir dir;
  const fs::path root = dir / "corpus";
  fs::create_directories(root);
  auto with_pts = [&](const std::string& stem) { WriteFile(root / (stem + ".pts"), Landmark68Pts()); };
  cv::Mat color(200, 200, CV_8UC3, cv::Scalar(10, 200, 30));
  // Corrupt: bytes that are not an image; truncated JPEG.
  WriteFile(root / "garbage.jpg", "definitely not a jpeg");
  with_pts("garbage");
  std::vector<uchar> jpg;
  cv::imencode(".jpg", color, jpg);
  WriteFile(root / "truncated.jpg", std::string(jpg.begin(), jpg.begin() + 40));
  with_pts("truncated");
  // Grayscale, 16-bit, alpha: accepted and converted.
  cv::imwrite((root / "gray.png").string(), cv::Mat(200, 200, CV_8UC1, cv::Scalar(77)));
  with_pts("gray");
  cv::imwrite((root / "deep.png").string(), cv::Mat(200, 200, CV_16UC3, cv::Scalar(65535, 257 * 100, 0)));
  with_pts("deep");
  cv::imwrite((root / "alpha.png").string(), cv::Mat(200, 200, CV_8UC4, cv::Scalar(10, 20, 30, 255)));
  with_pts("alpha");
  // Huge (for a tiny --max-pixels).
  cv::imwrite((root / "huge.png").string(), cv::Mat(300, 400, CV_8UC3, cv::Scalar(1, 2, 3)));
  with_pts("huge");
  // Landmark problems: NaN, short row, wrong count, far outside, no file.
  cv::imwrite((root / "nan.png").string(), color);
  std::string pts = Landmark68Pts();
  std::string nan_pts = pts;
  nan_pts.replace(nan_pts.find("{\n") + 2, 0, "nan 12.0\n");
  nan_pts.erase(nan_pts.rfind("\n", nan_pts.rfind("}") - 2) + 1, nan_pts.rfind("}") - nan_pts.rfind("\n", nan_pts.rfind("}") - 2) - 1);
  WriteFile(root / "nan.pts", nan_pts);
  cv::imwrite((root / "short.png").string(), color);
  std::string short_pts = pts;
  short_pts.replace(short_pts.find("{\n") + 2, short_pts.find('\n', short_pts.find("{\n") + 2) - short_pts.find("{\n") - 2, "42.0");
  WriteFile(root / "short.pts", short_pts);
  cv::imwrite((root / "count.png").string(), color);
  WriteFile(root / "count.pts", "version: 1\nn_points: 3\n{\n1 2\n3 4\n5 6\n}\n");
  cv::imwrite((root / "outside.png").string(), color);
  WriteFile(root / "outside.pts", Landmark68Pts(5000));
  cv::imwrite((root / "nolandmarks.png").string(), color);

  ReadOptions o;
  o.max_pixels = 100000;  // huge.png has 120000
  auto items = ReadCorpus(CorpusKind::kFolder, root.string(), o);
  ASSERT_EQ(items.size(), 11u);
  ExpectFailed(Find(items, "folder/garbage"), reason::kCorruptImage, "garbage.jpg");
  ExpectFailed(Find(items, "folder/truncated"), reason::kCorruptImage, "truncated.jpg");
  ExpectFailed(Find(items, "folder/huge"), reason::kImageTooLarge, "400x300");
  ExpectFailed(Find(items, "folder/nan"), reason::kBadLandmarks, "NaN");
  ExpectFailed(Find(items, "folder/short"), reason::kBadLandmarks, "short row");
  ExpectFailed(Find(items, "folder/count"), reason::kBadLandmarks, "n_points is 3");
  ExpectFailed(Find(items, "folder/outside"), reason::kBadLandmarks, "far outside");
  ExpectFailed(Find(items, "folder/nolandmarks"), reason::kNoLandmarks, "nolandmarks.pts");
  for (const char* ok : {"folder/gray", "folder/deep", "folder/alpha"})
    EXPECT_TRUE(Find(items, ok).ok()) << ok << ": " << Find(items, ok).reason;

  // The conversions themselves.
  cv::Mat g = LoadImageBgr((root / "gray.png").string());
  EXPECT_EQ(g.type(), CV_8UC3);
  EXPECT_EQ(g.at<cv::Vec3b>(5, 5), cv::Vec3b(77, 77, 77));
  cv::Mat d = LoadImageBgr((root / "deep.png").string());
  EXPECT_EQ(d.type(), CV_8UC3);
  EXPECT_EQ(d.at<cv::Vec3b>(5, 5), cv::Vec3b(255, 100, 0));
  cv::Mat a = LoadImageBgr((root / "alpha.png").string());
  EXPECT_EQ(a.type(), CV_8UC3);
  EXPECT_EQ(a.at<cv::Vec3b>(5, 5), cv::Vec3b(10, 20, 30));
  auto hdr = PeekImageHeader((root / "huge.png").string());
  ASSERT_TRUE(hdr.has_value());
  EXPECT_EQ(hdr->width, 400);
  EXPECT_EQ(hdr->height, 300);
  cv::imwrite((root / "h.jpg").string(), cv::Mat(33, 47, CV_8UC3, cv::Scalar(0)));
  hdr = PeekImageHeader((root / "h.jpg").string());
  ASSERT_TRUE(hdr.has_value());
  EXPECT_EQ(hdr->width, 47);
  EXPECT_EQ(hdr->height, 33);
}

TEST(BrokenInput, MatFilesIn300wLp) {
  TempDir dir;
  const fs::path root = CopySample(dir, "300W-LP");
  std::vector<std::string> stems;
  for (const auto& e : fs::directory_iterator(root / "HELEN"))
    if (e.path().extension() == ".mat") stems.push_back(e.path().stem().string());
  std::sort(stems.begin(), stems.end());
  ASSERT_EQ(stems.size(), 2u);
  // HELEN[0]: .mat without pt2d; HELEN[1]: pt2d of the wrong shape.
  {
    MatWriter w((root / "HELEN" / (stems[0] + ".mat")).string());
    w.Write("Pose_Para", MakeMatArray(1, 7, {0, 0, 0, 0, 0, 0, 1}, "single"));
  }
  {
    MatWriter w((root / "HELEN" / (stems[1] + ".mat")).string());
    w.Write("pt2d", MakeMatArray(2, 5, std::vector<double>(10, 1.0)));
  }
  // HELEN_Flip[0]: .mat missing; HELEN_Flip[1]: corrupt .mat; LFPW: NaN landmark, bad Pose_Para.
  fs::remove(root / "HELEN_Flip" / (stems[0] + ".mat"));
  WriteFile(root / "HELEN_Flip" / (stems[1] + ".mat"), std::string(300, 'x'));
  std::vector<std::string> lfpw;
  for (const auto& e : fs::directory_iterator(root / "LFPW"))
    if (e.path().extension() == ".mat") lfpw.push_back(e.path().string());
  std::sort(lfpw.begin(), lfpw.end());
  {
    MatArray pt2d = MatFile(lfpw[0]).Read("pt2d");
    pt2d.values[11] = std::nan("");
    MatWriter w(lfpw[0]);
    w.Write("pt2d", pt2d);
  }
  {
    MatArray pt2d = MatFile(lfpw[1]).Read("pt2d");
    MatWriter w(lfpw[1]);
    w.Write("pt2d", pt2d);
    w.Write("Pose_Para", MakeMatArray(1, 6, {0, 0, 0, 0, 0, 1}, "single"));
  }
  // AFW: one image is an empty file (corrupt), the other is missing (its .mat remains).
  std::vector<std::string> afw;
  for (const auto& e : fs::directory_iterator(root / "AFW"))
    if (e.path().extension() == ".jpg") afw.push_back(e.path().string());
  std::sort(afw.begin(), afw.end());
  WriteFile(afw[0], "");
  fs::remove(afw[1]);

  auto items = ReadCorpus(CorpusKind::k300wLp, root.string(), {});
  ASSERT_EQ(items.size(), 12u);
  auto id = [](const std::string& set, const std::string& stem) { return "300w-lp/" + set + "/" + stem; };
  ExpectFailed(Find(items, id("HELEN", stems[0])), reason::kBadMetadata, "variable 'pt2d' is missing");
  ExpectFailed(Find(items, id("HELEN", stems[1])), reason::kBadMetadata, "'pt2d' has shape 2x5, expected 2x68");
  ExpectFailed(Find(items, id("HELEN_Flip", stems[0])), reason::kMissingMetadata, ".mat file beside the image is missing");
  ExpectFailed(Find(items, id("HELEN_Flip", stems[1])), reason::kBadMetadata, stems[1] + ".mat");
  ExpectFailed(Find(items, id("LFPW", fs::path(lfpw[0]).stem().string())), reason::kBadLandmarks, "NaN");
  ExpectFailed(Find(items, id("LFPW", fs::path(lfpw[1]).stem().string())), reason::kBadMetadata,
               "'Pose_Para' has 6 values");
  ExpectFailed(Find(items, id("AFW", fs::path(afw[0]).stem().string())), reason::kCorruptImage,
               fs::path(afw[0]).filename().string());
  ExpectFailed(Find(items, id("AFW", fs::path(afw[1]).stem().string())), reason::kMissingImage,
               fs::path(afw[1]).filename().string() + ": image file is missing");
  int ok = 0;
  for (const Item& it : items) ok += it.ok();
  EXPECT_EQ(ok, 4);
}

TEST(BrokenInput, CelebaLists) {
  TempDir dir;
  const fs::path root = CopySample(dir, "CelebA");
  std::string list = ReadFile(root / "list_landmarks_align_celeba.txt");
  // Row 2 short (drop its last value), row 3 a NaN, and a row for an image that is missing.
  size_t r2 = list.find("000002.jpg");
  size_t r2_end = list.find('\n', r2);
  size_t last_space = list.rfind(' ', r2_end);
  list.erase(last_space, r2_end - last_space);
  size_t r3 = list.find("000003.jpg");
  size_t v = list.find_first_of("0123456789", r3 + 10);
  list.replace(v, list.find(' ', v) - v, "nan");
  list += "000099.jpg  60 110 100 110  80 130  65 150  95 150\n";
  WriteFile(root / "list_landmarks_align_celeba.txt", list);
  // An image on disk without a landmark row.
  fs::copy_file(root / "img_align_celeba/000001.jpg", root / "img_align_celeba/000050.jpg");

  auto items = ReadCorpus(CorpusKind::kCeleba, root.string(), {});
  ASSERT_EQ(items.size(), 8u);
  ExpectFailed(Find(items, "celeba/img_align_celeba/000002"), reason::kBadLandmarks, "9 values for 000002.jpg, expected 10");
  ExpectFailed(Find(items, "celeba/img_align_celeba/000003"), reason::kBadLandmarks, "NaN");
  ExpectFailed(Find(items, "celeba/img_align_celeba/000099"), reason::kMissingImage, "000099.jpg");
  ExpectFailed(Find(items, "celeba/img_align_celeba/000050"), reason::kNoLandmarks, "no landmark row for 000050.jpg");
  EXPECT_TRUE(Find(items, "celeba/img_align_celeba/000001").ok());

  // --partition without the partition file is a run-level error naming the file.
  fs::remove(root / "list_eval_partition.txt");
  ReadOptions o;
  o.partition = "val";
  try {
    ListCandidates(CorpusKind::kCeleba, root.string(), o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("list_eval_partition.txt"), std::string::npos) << e.what();
  }
}

TEST(BrokenInput, RunLevelProblemsNameThePath) {
  TempDir dir;
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string missing = (dir / "nope").string();
  EXPECT_NE(message([&] { DetectCorpusKind(missing); }).find(missing + ": corpus root does not exist"), std::string::npos);
  WriteFile(dir / "file.txt", "x");
  EXPECT_NE(message([&] { DetectCorpusKind((dir / "file.txt").string()); }).find("not a directory"), std::string::npos);
  fs::create_directories(dir / "notacorpus/sub");
  WriteFile(dir / "notacorpus/readme.txt", "hello");
  EXPECT_NE(message([&] { DetectCorpusKind((dir / "notacorpus").string()); }).find("not a corpus"), std::string::npos);
  fs::create_directories(dir / "empty300w/AFW");
  EXPECT_NE(message([&] { ListCandidates(CorpusKind::k300wLp, (dir / "empty300w").string(), {}); })
                .find("empty 300w-lp corpus"),
            std::string::npos);
  EXPECT_NE(message([&] { ListCandidates(CorpusKind::kFolder, (dir / "notacorpus").string(), {}); }).find("empty folder corpus"),
            std::string::npos);
  EXPECT_NE(message([&] { ListCandidates(CorpusKind::kCeleba, (dir / "notacorpus").string(), {}); }).find("img_align_celeba"),
            std::string::npos);
}

}  // namespace
}  // namespace facebatch::io
