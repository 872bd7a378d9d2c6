// Tests of lib/synth: determinism, ground-truth consistency with the written
// corpus files, the real readers (io) on every layout, the ground-truth file.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Hdf5.h"
#include "io/Index.h"
#include "io/Landmarks.h"
#include "io/Manifest.h"
#include "io/MatFile.h"
#include "render/Projection.h"
#include "synth/Generator.h"
#include "synth/GroundTruth.h"
#include "synth/Synth.h"
#include "batch/ShardFile.h"

namespace facebatch::synth {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::TempDir;

SynthOptions Small(const std::string& layout, const fs::path& out, int64_t count, uint64_t seed = 7) {
  SynthOptions o;
  o.layout = layout;
  o.out = out.string();
  o.count = count;
  o.seed = seed;
  o.uv = "48x56";
  o.threads = 2;
  o.progress = "none";
  return o;
}

std::vector<fs::path> Files(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root));
  std::sort(out.begin(), out.end());
  return out;
}

std::string Bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void ExpectSameGroundTruth(const GroundTruth& a, const GroundTruth& b) {
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_TRUE(torch::equal(a.shape_uv, b.shape_uv));
  EXPECT_TRUE(torch::equal(a.albedo_uv, b.albedo_uv));
  EXPECT_TRUE(torch::equal(a.M, b.M));
  EXPECT_TRUE(torch::equal(a.L, b.L));
  EXPECT_TRUE(torch::equal(a.landmarks, b.landmarks));
  EXPECT_TRUE(torch::equal(a.pose, b.pose));
  EXPECT_TRUE(torch::equal(a.visible, b.visible));
  EXPECT_TRUE(torch::equal(a.template_mask, b.template_mask));
  if (a.occluder.defined() && b.occluder.defined()) EXPECT_TRUE(torch::equal(a.occluder, b.occluder));
}

io::Manifest Index(const fs::path& root, const fs::path& manifest) {
  io::IndexOptions o;
  o.root = root.string();
  o.out = manifest.string();
  o.threads = 2;
  o.progress = "none";
  auto s = io::RunIndex(o);
  EXPECT_EQ(s.failed, 0);
  return io::ReadManifest(manifest.string());
}

TEST(Synth, SameSeedSameFilesOtherSeedOtherFiles) {
  TempDir tmp;
  RunSynth(Small("300w-lp", tmp / "a", 3));
  SynthOptions o2 = Small("300w-lp", tmp / "b", 3);
  o2.threads = 1;  // and independent of the thread count
  RunSynth(o2);
  RunSynth(Small("300w-lp", tmp / "c", 3, 8));
  auto fa = Files(tmp / "a"), fb = Files(tmp / "b"), fc = Files(tmp / "c");
  ASSERT_EQ(fa, fb);
  ASSERT_EQ(fa.size(), 3u * 4 + 3 + 1);  // 3 faces + mirrors (jpg + mat), 3 landmarks/ _pts.mat, ground truth
  int differing = 0;
  for (const auto& f : fa) {
    if (f == kGroundTruthFileName) continue;
    EXPECT_EQ(Bytes(tmp / "a" / f), Bytes(tmp / "b" / f)) << f;
    if (fs::exists(tmp / "c" / f) && Bytes(tmp / "a" / f) != Bytes(tmp / "c" / f)) ++differing;
  }
  EXPECT_EQ(differing, 15);  // every image and .mat differs under another seed
  auto ga = ReadGroundTruth((tmp / "a" / kGroundTruthFileName).string());
  auto gb = ReadGroundTruth((tmp / "b" / kGroundTruthFileName).string());
  auto gc = ReadGroundTruth((tmp / "c" / kGroundTruthFileName).string());
  ExpectSameGroundTruth(ga, gb);
  EXPECT_FALSE(torch::equal(ga.shape_uv, gc.shape_uv));
  EXPECT_FALSE(torch::equal(ga.albedo_uv, gc.albedo_uv));
  EXPECT_FALSE(torch::equal(ga.M, gc.M));
}

TEST(Synth, GroundTruthMatchesThe300wLpFilesAndTheReader) {
  TempDir tmp;
  const auto root = tmp / "300W-LP";
  RunSynth(Small("300w-lp", root, 4));
  auto gt = ReadGroundTruth((root / kGroundTruthFileName).string());
  ASSERT_EQ(gt.size(), 8);
  EXPECT_EQ(gt.corpus, "300w-lp");
  EXPECT_EQ(gt.uv_rows, 48);
  EXPECT_EQ(gt.uv_cols, 56);
  // The real reader: every item ok, ids = the ground-truth ids, classes as 300W-LP.
  auto manifest = Index(root, tmp / "m.jsonl");
  ASSERT_EQ(manifest.items.size(), 8u);
  FaceGenerator gen(48, 56);
  for (const auto& item : manifest.items) {
    ASSERT_TRUE(item.ok()) << item.reason;
    const int64_t row = gt.Find(item.id);
    ASSERT_GE(row, 0) << item.id;
    EXPECT_EQ(item.width, 450);
    EXPECT_EQ(item.ground_truth.at("Pose_Para").mat_class, "single");
    EXPECT_EQ(item.ground_truth.at("roi").mat_class, "int16");
    EXPECT_EQ(item.ground_truth.at("Shape_Para").dims, (std::vector<size_t>{199, 1}));
    EXPECT_EQ(item.ground_truth.at("Exp_Para").dims, (std::vector<size_t>{29, 1}));
    EXPECT_EQ(item.ground_truth.count("pts_3d"), item.subset.find("_Flip") == std::string::npos ? 1u : 0u);
    io::MatFile mat((root / (item.image.substr(0, item.image.size() - 4) + ".mat")).string());
    auto pt2d = mat.Read("pt2d");
    EXPECT_EQ(pt2d.mat_class, "double");
    ASSERT_EQ(pt2d.dims, (std::vector<size_t>{2, 68}));
    // pt2d (and the reader's landmarks) = the GT landmarks = GT shape projected by GT M
    // (originals; the _Flip copies hold the exact mirror, checked below).
    const bool flipped = item.subset.find("_Flip") != std::string::npos;
    auto lm = gen.ProjectLandmarks(gt.shape_uv[row], gt.M[row]);
    ASSERT_EQ(item.landmarks.points.size(), 68u);
    for (int i = 0; i < 68; ++i) {
      if (!flipped) {
        EXPECT_NEAR(pt2d.at(0, i), lm[i][0].item<float>(), 1e-3);
        EXPECT_NEAR(pt2d.at(1, i), lm[i][1].item<float>(), 1e-3);
      }
      EXPECT_NEAR(pt2d.at(0, i), gt.landmarks[row][i][0].item<float>(), 1e-3);
      EXPECT_NEAR(pt2d.at(1, i), gt.landmarks[row][i][1].item<float>(), 1e-3);
      EXPECT_NEAR(item.landmarks.points[i].x, gt.landmarks[row][i][0].item<float>(), 1e-3);
      EXPECT_NEAR(item.landmarks.points[i].y, gt.landmarks[row][i][1].item<float>(), 1e-3);
    }
    // Pose_Para converts back to the GT M (render's conversion, BFM units 1e4 x cm).
    auto pp = torch::tensor(item.ground_truth.at("Pose_Para").values, torch::kDouble).view({1, 7});
    auto M = render::PoseParaToM(pp, 450, 1e4).to(torch::kFloat)[0];
    EXPECT_LT((M - gt.M[row]).abs().max().item<float>(), 2e-3 * gt.M[row].abs().max().item<float>()) << item.id;
  }
  // The _Flip copy is the exact mirror: landmarks x -> 449 - x with iBUG partners swapped
  // (io::FlipLandmarks68, what the reader's tests expect of 300W-LP); its GT shape and M
  // re-project to it up to the template's landmark asymmetry (measured: up to ~2 UV pixels at 48x56).
  const auto& perm = io::Ibug68FlipPermutation();
  for (int64_t r = 0; r < gt.size(); ++r) {
    const std::string& id = gt.ids[r];
    if (id.find("_Flip/") != std::string::npos) continue;
    std::string fid = id;
    fid.insert(fid.find('/', 8), "_Flip");
    const int64_t f = gt.Find(fid);
    ASSERT_GE(f, 0) << fid;
    for (int i = 0; i < 68; ++i) {
      EXPECT_NEAR(gt.landmarks[f][i][0].item<float>(), 449 - gt.landmarks[r][perm[i]][0].item<float>(), 0.05);
      EXPECT_NEAR(gt.landmarks[f][i][1].item<float>(), gt.landmarks[r][perm[i]][1].item<float>(), 0.05);
    }
    EXPECT_NEAR(gt.pose[f][0].item<float>(), -gt.pose[r][0].item<float>(), 1e-3);
    EXPECT_NEAR(gt.pose[f][2].item<float>(), -gt.pose[r][2].item<float>(), 1e-3);
    auto mirrored_projection = gen.ProjectLandmarks(gt.shape_uv[f], gt.M[f]);
    const double dev = (mirrored_projection - gt.landmarks[f]).abs().max().item<float>();
    const double scale = render::DecomposeM(gt.M[f].unsqueeze(0)).scale[0].item<float>();
    EXPECT_LT(dev, scale * 15.5 / 56 * 2.5) << fid;  // 2.5 UV pixels (the template is 15.5 cm wide)
    // The mirrored image is the original flipped (JPEG re-encoding aside).
    cv::Mat a = cv::imread((root / (id.substr(8) + ".jpg")).string()), b = cv::imread((root / (fid.substr(8) + ".jpg")).string());
    ASSERT_FALSE(a.empty() || b.empty());
    cv::Mat af;
    cv::flip(a, af, 1);
    EXPECT_LT(cv::norm(af, b, cv::NORM_L1) / af.total() / 3, 3.0) << fid;
    EXPECT_GT(cv::norm(a, b, cv::NORM_L1) / af.total() / 3, 3.0) << fid;
  }
}

TEST(Synth, TheOccluderIsRecordedWhereItWasDrawn) {
  // Issue 15: the ground truth says which pixels an occluder hides. The occluder is drawn
  // last, so the same face without it differs exactly there (plus anti-aliased edges).
  FaceGenerator gen(48, 56);
  SceneOptions with, without;
  with.occluder_prob = 1, without.occluder_prob = 0;
  for (uint64_t k = 0; k < 4; ++k) {
    auto render = [&](const SceneOptions& scene) {
      std::mt19937_64 rng(ItemSeed(8, 2, k));
      Identity id = gen.RandomIdentity(rng);
      Placement p;
      p.scale = 180 / 15.5, p.tx = 150, p.ty = 160;
      return gen.Render(id, FaceGenerator::PlacementM(p), p, 300, 300, rng, scene);
    };
    SynthFace a = render(with), b = render(without);
    ASSERT_TRUE(a.occluder[0] == 1 || a.occluder[0] == 2);
    EXPECT_EQ(b.occluder[0], 0);
    cv::Mat mask = OccluderMask(torch::tensor(std::vector<float>(a.occluder.begin(), a.occluder.end())), 300, 300);
    ASSERT_GT(cv::countNonZero(mask), 50);
    cv::Mat diff;
    cv::absdiff(a.image, b.image, diff);
    cv::Mat changed;
    cv::cvtColor(diff, changed, cv::COLOR_BGR2GRAY);
    changed = changed > 0;
    cv::Mat grown;
    cv::dilate(mask, grown, cv::Mat::ones(5, 5, CV_8U));
    cv::Mat outside = changed & ~grown;
    EXPECT_EQ(cv::countNonZero(outside), 0) << "face " << k;
    // Inside the (eroded) mask the pixels are the occluder's colour: most changed.
    cv::Mat core, inside;
    cv::erode(mask, core, cv::Mat::ones(3, 3, CV_8U));
    inside = changed & core;
    EXPECT_GT(cv::countNonZero(inside), 0.8 * cv::countNonZero(core)) << "face " << k;
    // The mirrored copy's occluder is the mirror image of the mask.
    SynthFace m = gen.Mirror(a, 300);
    cv::Mat mm = OccluderMask(torch::tensor(std::vector<float>(m.occluder.begin(), m.occluder.end())), 300, 300), flipped;
    cv::flip(mask, flipped, 1);
    cv::Mat x;
    cv::bitwise_xor(mm, flipped, x);
    EXPECT_LT(cv::countNonZero(x), 0.1 * cv::countNonZero(mask)) << "face " << k;
  }
}

TEST(Synth, FrontalLandmarksLieOnTheRenderedFace) {
  FaceGenerator gen(48, 56);
  SceneOptions scene;
  scene.occluder_prob = 0;
  for (uint64_t k = 0; k < 3; ++k) {
    std::mt19937_64 rng(ItemSeed(3, 9, k));
    Identity id = gen.RandomIdentity(rng);
    Placement p;
    p.scale = 180 / 15.5;
    p.tx = 150, p.ty = 160;
    SynthFace f = gen.Render(id, FaceGenerator::PlacementM(p), p, 300, 300, rng, scene);
    int visible = 0;
    for (int i = 0; i < 68; ++i) {
      const int x = int(std::lround(f.landmarks[2 * i])), y = int(std::lround(f.landmarks[2 * i + 1]));
      ASSERT_TRUE(x >= 1 && y >= 1 && x < 299 && y < 299);
      int covered = 0;  // the landmark pixel or a neighbour (jaw points sit on the outline)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) covered += f.coverage.at<uint8_t>(y + dy, x + dx) > 0;
      EXPECT_GT(covered, 0) << "landmark " << i;
      visible += f.visible[i];
    }
    EXPECT_GE(visible, 60);
    EXPECT_NEAR(f.pose[0], 0, 1e-3);
    // The face is not flat: pixels on the face vary, and the background shows around it.
    cv::Scalar mean, stddev;
    cv::meanStdDev(f.image, mean, stddev, f.coverage);
    EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 6);
    EXPECT_GT(cv::countNonZero(f.coverage), 10000);
    EXPECT_LT(cv::countNonZero(f.coverage), 300 * 300 / 2);
  }
  // A profile hides landmarks.
  std::mt19937_64 rng(5);
  Identity id = gen.RandomIdentity(rng);
  Placement p;
  p.yaw = 85 * M_PI / 180;
  p.scale = 180 / 15.5;
  p.tx = 150, p.ty = 160;
  SynthFace f = gen.Render(id, FaceGenerator::PlacementM(p), p, 300, 300, rng, scene);
  int visible = 0;
  for (int i = 0; i < 68; ++i) visible += f.visible[i];
  EXPECT_LT(visible, 55);
  EXPECT_NEAR(f.pose[0], 85, 0.1);
}

TEST(Synth, ExpressionsMoveTheMouthAndLids) {
  FaceGenerator gen(48, 56);
  SceneOptions scene;
  scene.occluder_prob = 0;
  scene.expression_prob = 1;
  std::mt19937_64 id_rng(11);
  Identity id = gen.RandomIdentity(id_rng);
  Placement p;
  p.scale = 10;
  p.tx = 100, p.ty = 100;
  bool saw_open = false;
  for (uint64_t k = 0; k < 12 && !saw_open; ++k) {
    std::mt19937_64 rng(ItemSeed(1, 1, k));
    SynthFace f = gen.Render(id, FaceGenerator::PlacementM(p), p, 200, 200, rng, scene);
    if (f.mouth_open < 0.3) continue;
    saw_open = true;
    // Inner lips 62 (upper) / 66 (lower) part; the mouth corners stay.
    auto neutral = gen.ProjectLandmarks(id.shape_uv, FaceGenerator::PlacementM(p));
    const double gap = f.landmarks[2 * 66 + 1] - f.landmarks[2 * 62 + 1];
    const double gap0 = neutral[66][1].item<float>() - neutral[62][1].item<float>();
    EXPECT_GT(gap - gap0, 2.0);
    EXPECT_NEAR(f.landmarks[2 * 48 + 1], neutral[48][1].item<float>(), 1.0);
  }
  EXPECT_TRUE(saw_open);
}

TEST(Synth, AflwAndCelebaLayoutsIndexAndMatchTheGroundTruth) {
  TempDir tmp;
  RunSynth(Small("aflw2000", tmp / "AFLW2000", 3));
  auto gt = ReadGroundTruth((tmp / "AFLW2000" / kGroundTruthFileName).string());
  auto m = Index(tmp / "AFLW2000", tmp / "a.jsonl");
  ASSERT_EQ(m.items.size(), 3u);
  for (const auto& item : m.items) {
    ASSERT_TRUE(item.ok()) << item.reason;
    EXPECT_EQ(item.corpus, "aflw2000");
    const int64_t row = gt.Find(item.id);
    ASSERT_GE(row, 0) << item.id;
    EXPECT_EQ(item.ground_truth.at("pt3d_68").dims, (std::vector<size_t>{3, 68}));
    for (int i = 0; i < 68; ++i) EXPECT_NEAR(item.landmarks.points[i].x, gt.landmarks[row][i][0].item<float>(), 1e-3);
  }
  SynthOptions co = Small("celeba", tmp / "CelebA", 10);
  co.per_identity = 2;
  RunSynth(co);
  gt = ReadGroundTruth((tmp / "CelebA" / kGroundTruthFileName).string());
  m = Index(tmp / "CelebA", tmp / "c.jsonl");
  ASSERT_EQ(m.items.size(), 10u);
  int train = 0;
  for (const auto& item : m.items) {
    ASSERT_TRUE(item.ok()) << item.reason;
    EXPECT_EQ(item.width, 178);
    EXPECT_EQ(item.height, 218);
    const int64_t row = gt.Find(item.id);
    ASSERT_GE(row, 0) << item.id;
    train += item.partition == "train";
    // The list's five points are the GT's (rounded), near CelebA's aligned positions.
    auto five = io::FiveFrom68(io::Landmarks{io::LandmarkConvention::kIbug68, [&] {
                                               std::vector<io::Point2> p;
                                               for (int i = 0; i < 68; ++i)
                                                 p.push_back({gt.landmarks[row][i][0].item<float>(),
                                                              gt.landmarks[row][i][1].item<float>()});
                                               return p;
                                             }()});
    ASSERT_EQ(item.landmarks.points.size(), 5u);
    for (int k = 0; k < 5; ++k) {
      EXPECT_NEAR(item.landmarks.points[k].x, five.points[k].x, 0.51);
      EXPECT_NEAR(item.landmarks.points[k].y, five.points[k].y, 0.51);
    }
    EXPECT_NEAR(item.landmarks.points[0].x, 69, 10);
    EXPECT_NEAR(item.landmarks.points[0].y, 111, 10);
    EXPECT_NEAR(item.landmarks.points[1].x, 108, 10);
  }
  EXPECT_EQ(train, 8);
  EXPECT_EQ(m.items[0].identity, m.items[1].identity);
  EXPECT_NE(m.items[1].identity, m.items[2].identity);
  // Same identity: same shape and albedo up to the expression.
  EXPECT_LT((gt.shape_uv[0] - gt.shape_uv[1]).abs().mean().item<float>(),
            (gt.shape_uv[0] - gt.shape_uv[2]).abs().mean().item<float>());
}

GroundTruth TinyGroundTruth(int64_t n) {
  GroundTruth gt;
  gt.corpus = "celeba";
  gt.generator = "test";
  gt.seed = 42;
  gt.uv_rows = 16;
  gt.uv_cols = 20;
  gt.created = "2026-01-01T00:00:00Z";
  gt.facebatch_version = "0";
  torch::manual_seed(3);
  for (int64_t i = 0; i < n; ++i) gt.ids.push_back("celeba/img_align_celeba/" + std::to_string(i));
  gt.shape_uv = torch::randn({n, 3, 16, 20});
  gt.albedo_uv = torch::rand({n, 3, 16, 20});
  gt.M = torch::randn({n, 2, 4});
  gt.L = torch::randn({n, 27});
  gt.landmarks = torch::rand({n, 68, 2}) * 100;
  gt.pose = torch::randn({n, 3});
  gt.visible = torch::randint(0, 2, {n, 68}).to(torch::kUInt8);
  gt.occluder = torch::zeros({n, 6});
  gt.occluder[0] = torch::tensor({1.f, 40.f, 50.f, 10.f, 5.f, 30.f});
  gt.template_mask = torch::randint(0, 2, {16, 20}).to(torch::kUInt8);
  return gt;
}

TEST(GroundTruthFile, RoundTripAndRejections) {
  TempDir tmp;
  const std::string path = (tmp / "gt.h5").string();
  GroundTruth gt = TinyGroundTruth(3);
  WriteGroundTruth(path, gt);
  GroundTruth back = ReadGroundTruth(path);
  ExpectSameGroundTruth(gt, back);
  EXPECT_EQ(back.corpus, "celeba");
  EXPECT_EQ(back.seed, 42u);
  EXPECT_EQ(back.created, gt.created);
  EXPECT_EQ(back.Find("celeba/img_align_celeba/2"), 2);
  EXPECT_EQ(back.Find("nope"), -1);
  // Wrong dims are refused when writing.
  GroundTruth bad = gt;
  bad.M = torch::zeros({3, 3, 4});
  EXPECT_THROW(WriteGroundTruth((tmp / "bad.h5").string(), bad), Error);
  EXPECT_TRUE(torch::equal(back.occluder, gt.occluder));
  // The occluder's mask: an ellipse of half axes 10 x 5 around (40, 50): about
  // pi (10 + 1/2)(5 + 1/2) pixels (the outline's pixels are filled).
  auto mask = OccluderMask(back.occluder[0], 100, 120);
  EXPECT_EQ(mask.at<uint8_t>(50, 40), 255);
  EXPECT_EQ(mask.at<uint8_t>(10, 10), 0);
  EXPECT_NEAR(cv::countNonZero(mask), 3.14159 * 10.5 * 5.5, 15);
  EXPECT_EQ(cv::countNonZero(OccluderMask(back.occluder[1], 100, 120)), 0);
  // Version 1 (before /occluder) is still read: occluders unknown (kind -1).
  {
    auto f = io::hdf5::File::OpenReadWrite(path);
    f.root().SetAttribute("version", int64_t(1));
    f.root().Remove("occluder");
    f.Close();
    auto v1 = ReadGroundTruth(path);
    EXPECT_EQ(v1.occluder[0][0].item<float>(), -1.f);
  }
  // Unknown version and another format are rejected with the file named.
  {
    auto f = io::hdf5::File::OpenReadWrite(path);
    f.root().SetAttribute("version", int64_t(3));
    f.Close();
  }
  try {
    ReadGroundTruth(path);
    FAIL() << "version 3 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("version 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  {
    auto f = io::hdf5::File::OpenReadWrite(path);
    f.root().SetAttribute("version", int64_t(1));
    f.root().SetAttribute("format", std::string("something-else"));
    f.Close();
  }
  EXPECT_THROW(ReadGroundTruth(path), InputError);
  // A missing dataset is an InputError naming the file.
  {
    WriteGroundTruth(path, gt);
    auto f = io::hdf5::File::OpenReadWrite(path);
    f.root().Remove("L");
    f.Close();
  }
  EXPECT_THROW(ReadGroundTruth(path), InputError);
}

TEST(GroundTruthFile, StreamingWriterEqualsTheWholeFileWriter) {
  TempDir tmp;
  GroundTruth gt = TinyGroundTruth(4);
  const std::string path = (tmp / "stream.h5").string();
  {
    GroundTruthWriter w(path, gt);
    for (int64_t r : {2, 0, 3, 1})  // any order, as the parallel generator writes them
      w.WriteRow(r, gt.shape_uv[r], gt.albedo_uv[r], gt.M[r], gt.L[r], gt.landmarks[r], gt.pose[r], gt.visible[r],
                 gt.occluder[r]);
    EXPECT_THROW(w.WriteRow(4, gt.shape_uv[0], gt.albedo_uv[0], gt.M[0], gt.L[0], gt.landmarks[0], gt.pose[0],
                            gt.visible[0], gt.occluder[0]),
                 Error);
    EXPECT_THROW(w.WriteRow(0, gt.shape_uv[0].slice(1, 0, 8), gt.albedo_uv[0], gt.M[0], gt.L[0], gt.landmarks[0],
                            gt.pose[0], gt.visible[0], gt.occluder[0]),
                 Error);
    w.Close();
  }
  ExpectSameGroundTruth(gt, ReadGroundTruth(path));
  // A row never written is an error at Close.
  GroundTruthWriter w2((tmp / "partial.h5").string(), gt);
  w2.WriteRow(0, gt.shape_uv[0], gt.albedo_uv[0], gt.M[0], gt.L[0], gt.landmarks[0], gt.pose[0], gt.visible[0],
              gt.occluder[0]);
  EXPECT_THROW(w2.Close(), Error);
  // The wrapper's row writes check their range and trailing dims.
  auto f = io::hdf5::File::Create((tmp / "rows.h5").string());
  f.root().CreateDataset("x", io::hdf5::DType::kFloat32, {3, 2});
  f.root().WriteRows("x", 1, io::hdf5::MakeArray(std::vector<float>{1, 2, 3, 4}, {2, 2}));
  EXPECT_THROW(f.root().WriteRows("x", 2, io::hdf5::MakeArray(std::vector<float>{1, 2, 3, 4}, {2, 2})), InputError);
  EXPECT_THROW(f.root().WriteRows("x", 0, io::hdf5::MakeArray(std::vector<float>{1, 2, 3}, {1, 3})), InputError);
  auto x = f.root().ReadDataset("x");
  EXPECT_EQ((std::vector<float>(x.data<float>(), x.data<float>() + 6)), (std::vector<float>{0, 0, 1, 2, 3, 4}));
}

// --facial-hair: the default probability keeps every seed's identities (the draw order is
// unchanged), and probability 1 paints (dark) hair over the lower face where 0 does not.
TEST(Synth, FacialHairFollowsItsProbability) {
  FaceGenerator gen(48, 56);
  const auto& mask = gen.face_template().topology.mask;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    EXPECT_TRUE(gen.RandomIdentity(a).albedo_uv.equal(gen.RandomIdentity(b, 0.22).albedo_uv));
  }
  // Mean albedo of the lower third of the UV map with and without hair: black and brown
  // hair are much darker than skin, so at least one identity of four gets darker there
  // (the draws after the branch differ, so only the darkening is asserted; if the
  // probability were ignored, both calls would agree and nothing would darken).
  int darker = 0;
  for (uint64_t seed = 0; seed < 4; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    auto with = gen.RandomIdentity(a, 1.0).albedo_uv, without = gen.RandomIdentity(b, 0.0).albedo_uv;
    auto lower = [&](const at::Tensor& alb) {
      auto m = mask.to(at::kFloat).slice(0, 32, 48);
      return (alb.slice(1, 32, 48) * m).sum().item<double>() / (3 * m.sum().item<double>());
    };
    if (lower(with) < lower(without) - 1e-3) ++darker;
  }
  EXPECT_GE(darker, 1);
}

TEST(SynthOptions, CheckRejectsBadOptions) {
  SynthOptions o = Small("300w-lp", "/tmp/x", 1);
  EXPECT_NO_THROW(o.Check());
  auto bad = [&](auto edit) {
    SynthOptions b = o;
    edit(b);
    EXPECT_THROW(b.Check(), UsageError);
  };
  bad([](SynthOptions& b) { b.layout = "folder"; });
  bad([](SynthOptions& b) { b.out = ""; });
  bad([](SynthOptions& b) { b.count = 0; });
  bad([](SynthOptions& b) { b.uv = "48"; });
  bad([](SynthOptions& b) { b.uv = "8x8"; });
  bad([](SynthOptions& b) { b.yaw_max = 120; });
  bad([](SynthOptions& b) { b.occluders = 2; });
  bad([](SynthOptions& b) { b.facial_hair = -0.1; });
  bad([](SynthOptions& b) { b.per_identity = 0; });
  bad([](SynthOptions& b) { b.subsets = "AFW,XYZ"; });
}

TEST(SynthCli, WritesEveryLayoutThatIndexReads) {
  TempDir tmp;
  for (auto [layout, dir, n] : {std::tuple{"300w-lp", "lp", 4}, std::tuple{"aflw2000", "aflw", 2},
                                std::tuple{"celeba", "celeba", 2}}) {
    auto r = facebatch::testing::RunCli({"synth", "--layout", layout, "--out", (tmp / dir).string(), "--count", "2",
                                         "--seed", "3", "--uv", "32x40", "--threads", "2", "--progress", "none"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("images/s"), std::string::npos) << r.output;
    auto ix = facebatch::testing::RunCli({"index", "--root", (tmp / dir).string(), "--out",
                                          (tmp / (std::string(dir) + ".jsonl")).string(), "--progress", "none"});
    ASSERT_EQ(ix.exit_code, 0) << ix.output;
    auto m = io::ReadManifest((tmp / (std::string(dir) + ".jsonl")).string());
    EXPECT_EQ(m.header.corpus, layout);
    EXPECT_EQ(static_cast<int>(m.OkItems().size()), n);
    EXPECT_EQ(m.header.counts.at("failed"), 0);
  }
  auto bad = facebatch::testing::RunCli({"synth", "--layout", "folder", "--out", (tmp / "x").string()});
  EXPECT_EQ(bad.exit_code, kExitUsage) << bad.output;
}

}  // namespace
}  // namespace facebatch::synth

namespace facebatch::synth {
namespace {

template <typename T>
std::vector<T> Flat(const at::Tensor& t) {
  auto c = t.contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

// A fit output file (the shard layout, written by the real writer) whose maps are
// three random identities; the middle fit failed.
std::vector<Identity> WriteFits(const std::string& path, const FaceGenerator& gen, const std::string& outputs) {
  const auto& topo = gen.face_template().topology;
  batch::LayoutSizes s;
  s.latent_shape = 4, s.latent_albedo = 4;
  s.uv_rows = topo.mask.size(0), s.uv_cols = topo.mask.size(1);
  s.num_vertices = topo.vertex_uv.size(0), s.num_triangles = topo.triangles.size(0);
  s.terms = {"photometric", "total"};
  auto layout = batch::ShardLayout::Make(s, batch::ParseOutputs(outputs), false);
  batch::ShardHeader h;
  h.triangles = Flat<int64_t>(topo.triangles);
  h.vertex_uv = Flat<float>(topo.vertex_uv);
  h.landmarks68 = Flat<int64_t>(topo.landmarks68);
  h.mask = Flat<int64_t>(topo.mask.to(torch::kLong));
  std::vector<Identity> ids;
  std::vector<batch::ImageRecord> records;
  for (int i = 0; i < 3; ++i) {
    std::mt19937_64 rng(100 + i);
    ids.push_back(gen.RandomIdentity(rng));
    batch::ImageRecord r;
    r.id = "fit" + std::to_string(i);
    r.position = i;
    r.strings["/images/id"] = r.id;
    r.strings["/images/status"] = i == 1 ? "failed" : "ok";
    r.strings["/images/reason_code"] = i == 1 ? "non_finite" : "";
    if (layout.Find("/maps/shape")) r.floats["/maps/shape"] = Flat<float>(ids.back().shape_uv);
    if (layout.Find("/maps/albedo")) r.floats["/maps/albedo"] = Flat<float>(ids.back().albedo_uv);
    records.push_back(std::move(r));
  }
  batch::WriteShardFile(path, h, layout, records);
  return ids;
}

TEST(Synth, FromFitsReRendersTheOkFitsUnderNewScenes) {
  TempDir tmp;
  FaceGenerator gen(48, 56);
  const auto fits = (tmp / "fits.h5").string();
  auto ids = WriteFits(fits, gen, "shape,albedo");
  auto o = Small("aflw2000", tmp / "from", 0);
  o.uv = "96x112";  // ignored: the fits fix the UV size
  o.from = fits;
  o.per_identity = 2;
  auto summary = RunSynth(o);
  EXPECT_EQ(summary.images, 4);  // 2 ok fits x 2
  auto gt = ReadGroundTruth((tmp / "from" / kGroundTruthFileName).string());
  ASSERT_EQ(gt.size(), 4);
  EXPECT_EQ(gt.uv_rows, 48);
  EXPECT_NE(gt.generator.find("fits.h5"), std::string::npos) << gt.generator;
  const auto mask = gen.face_template().topology.mask.to(torch::kFloat).unsqueeze(0);
  // Faces 0, 1 are fit 0; faces 2, 3 are fit 2 (the failed fit 1 is skipped); ids sort as faces.
  for (int64_t row = 0; row < 4; ++row) {
    const auto& want = ids[row < 2 ? 0 : 2];
    EXPECT_TRUE(torch::allclose(gt.shape_uv[row], want.shape_uv * mask, 0, 1e-6)) << row;
    EXPECT_TRUE(torch::allclose(gt.albedo_uv[row], want.albedo_uv.clamp(0, 1) * mask, 0, 1e-6)) << row;
  }
  // New scenes: the same face under another pose and light.
  EXPECT_FALSE(torch::allclose(gt.M[0], gt.M[1]));
  EXPECT_FALSE(torch::allclose(gt.L[0], gt.L[1]));
  // The corpus reads back through the real AFLW2000-3D reader.
  auto m = Index(tmp / "from", tmp / "from.jsonl");
  EXPECT_EQ(m.items.size(), 4u);

  // Same seed, same files.
  auto o2 = o;
  o2.out = (tmp / "from2").string();
  RunSynth(o2);
  ExpectSameGroundTruth(gt, ReadGroundTruth((tmp / "from2" / kGroundTruthFileName).string()));
}

TEST(Synth, FromFitsNamesTheFileWhenMapsAreMissing) {
  TempDir tmp;
  FaceGenerator gen(48, 56);
  const auto fits = (tmp / "noalbedo.h5").string();
  WriteFits(fits, gen, "shape");
  auto o = Small("aflw2000", tmp / "x", 0);
  o.from = fits;
  try {
    RunSynth(o);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("noalbedo.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/maps/albedo"), std::string::npos) << e.what();
  }
  auto bad = Small("aflw2000", tmp / "y", 0);
  EXPECT_THROW(bad.Check(), UsageError);  // --count 0 needs --from
}

}  // namespace
}  // namespace facebatch::synth
