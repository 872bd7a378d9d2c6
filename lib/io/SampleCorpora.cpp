#include "io/SampleCorpora.h"

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/Error.h"
#include "io/Landmarks.h"
#include "io/MatFile.h"

namespace facebatch::io {
namespace fs = std::filesystem;

namespace {

// Machine-independent randomness: only mt19937_64's raw output is standardised,
// so draw uniforms and normals from it by hand (std:: distributions differ between
// standard libraries).
double Uniform(std::mt19937_64& rng, double a = 0, double b = 1) {
  return a + (b - a) * static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}
double Normal(std::mt19937_64& rng) {
  double u1 = std::max(Uniform(rng), 1e-300), u2 = Uniform(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}
int UniformInt(std::mt19937_64& rng, int lo, int hi) {  // inclusive
  return lo + static_cast<int>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

cv::Point Fx(const Point2& p) {  // 4 fractional bits for sub-pixel drawing
  return cv::Point(static_cast<int>(std::lround(p.x * 16)), static_cast<int>(std::lround(p.y * 16)));
}
std::vector<cv::Point> FxRange(const std::vector<Point2>& lm, int a, int b) {
  std::vector<cv::Point> out;
  for (int i = a; i <= b; ++i) out.push_back(Fx(lm[i]));
  return out;
}
Point2 Mean(const std::vector<Point2>& lm, int a, int b) {
  Point2 m;
  for (int i = a; i <= b; ++i) {
    m.x += lm[i].x / (b - a + 1);
    m.y += lm[i].y / (b - a + 1);
  }
  return m;
}

cv::Mat Background(int w, int h, std::mt19937_64& rng) {
  cv::Mat bg(h, w, CV_8UC3);
  cv::Vec3d top(Uniform(rng, 40, 220), Uniform(rng, 40, 220), Uniform(rng, 40, 220));
  cv::Vec3d bottom(Uniform(rng, 40, 220), Uniform(rng, 40, 220), Uniform(rng, 40, 220));
  for (int y = 0; y < h; ++y) {
    double t = h > 1 ? double(y) / (h - 1) : 0;
    cv::Vec3d c = top * (1 - t) + bottom * t;
    for (int x = 0; x < w; ++x) bg.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(c[0]),
                                                                     cv::saturate_cast<uchar>(c[1]),
                                                                     cv::saturate_cast<uchar>(c[2]));
  }
  return bg;
}

MatArray Vec(size_t rows, size_t cols, std::vector<double> v, const char* cls) {
  MatArray a;
  a.dims = {rows, cols};
  a.values = std::move(v);
  a.mat_class = cls;
  return a;
}

std::vector<double> Gaussians(std::mt19937_64& rng, size_t n, double sigma) {
  std::vector<double> v(n);
  for (double& x : v) x = sigma * Normal(rng);
  return v;
}

std::vector<double> Roi(const std::vector<Point2>& lm) {
  double x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30;
  for (const Point2& p : lm) {
    x0 = std::min(x0, p.x); y0 = std::min(y0, p.y);
    x1 = std::max(x1, p.x); y1 = std::max(y1, p.y);
  }
  return {std::floor(x0), std::floor(y0), std::ceil(x1), std::ceil(y1)};
}

/// The 3DDFA-style parameter fields (shared by 300W-LP and AFLW2000-3D .mat files).
struct FaceParams {
  std::vector<double> pose, shape, exp, color, illum, tex;
};

FaceParams RandomParams(std::mt19937_64& rng, double roll, double yaw, double cx, double cy, double scale) {
  FaceParams p;
  // Pose_Para: pitch, yaw, roll (radians), tx, ty, tz, scale.
  p.pose = {Uniform(rng, -0.2, 0.2), yaw, roll, cx, cy, 0.0, scale};
  p.shape = Gaussians(rng, 199, 2.0e5);
  p.exp = Gaussians(rng, 29, 1.0);
  p.color = {1 + 0.05 * Normal(rng), 1 + 0.05 * Normal(rng), 1 + 0.05 * Normal(rng), 0, 0, 0, 1.0};
  p.illum = {0.5 + 0.1 * Normal(rng), 0.5 + 0.1 * Normal(rng), 0.5 + 0.1 * Normal(rng), 0.2, 0.2, 0.2,
             Uniform(rng, -1, 1), Uniform(rng, -1, 1), 20, 1};
  p.tex = Gaussians(rng, 199, 1.0e2);
  return p;
}

void WriteParams(MatWriter& w, const FaceParams& p, const std::vector<Point2>& lm) {
  w.Write("roi", Vec(1, 4, Roi(lm), "int16"));
  w.Write("Pose_Para", Vec(1, 7, p.pose, "single"));
  w.Write("Shape_Para", Vec(199, 1, p.shape, "double"));
  w.Write("Exp_Para", Vec(29, 1, p.exp, "double"));
  w.Write("Color_Para", Vec(1, 7, p.color, "single"));
  w.Write("Illum_Para", Vec(1, 10, p.illum, "double"));
  w.Write("Tex_Para", Vec(199, 1, p.tex, "double"));
}

/// 2 x N column-major (row 0 = x, row 1 = y) [+ row 2 = z], as MATLAB stores pt2d / pt3d_68.
MatArray Rows(const std::vector<Point2>& lm, const std::vector<double>* z = nullptr) {
  size_t r = z ? 3 : 2;
  MatArray a;
  a.dims = {r, lm.size()};
  for (size_t j = 0; j < lm.size(); ++j) {
    a.values.push_back(lm[j].x);
    a.values.push_back(lm[j].y);
    if (z) a.values.push_back((*z)[j]);
  }
  return a;
}

/// N x 2 column-major (the landmarks/ pts_2d, pts_3d layout).
MatArray Columns(const std::vector<Point2>& lm) {
  MatArray a;
  a.dims = {lm.size(), 2};
  for (const Point2& p : lm) a.values.push_back(p.x);
  for (const Point2& p : lm) a.values.push_back(p.y);
  return a;
}

void WriteJpeg(const fs::path& path, const cv::Mat& img) {
  if (!cv::imwrite(path.string(), img, {cv::IMWRITE_JPEG_QUALITY, 88}))
    throw InputError(path.string(), "cannot write the image");
}

}  // namespace

std::vector<Point2> RandomFace68(double cx, double cy, double face_width, std::mt19937_64& rng, double* roll_out,
                                 double* yaw_out) {
  double roll = Uniform(rng, -0.25, 0.25), yaw = Uniform(rng, -0.5, 0.5);
  double s = face_width / 1.64;  // CanonicalFace68 is 1.64 units wide
  double c = std::cos(roll), sn = std::sin(roll);
  std::vector<Point2> out;
  for (const Point2& p : CanonicalFace68()) {
    // Yaw-like squeeze: the side turning away shrinks, features shift toward it.
    double squeeze = p.x * yaw > 0 ? 1.0 - 0.35 * std::abs(yaw) : 1.0 - 0.1 * std::abs(yaw);
    double x = p.x * squeeze + 0.25 * std::sin(yaw);
    double y = p.y;
    out.push_back({cx + s * (c * x - sn * y), cy + s * (sn * x + c * y)});
  }
  if (roll_out) *roll_out = roll;
  if (yaw_out) *yaw_out = yaw;
  return out;
}

std::vector<Point2> FlipLandmarks68(const std::vector<Point2>& lm, int width) {
  const auto& perm = Ibug68FlipPermutation();
  std::vector<Point2> out(68);
  for (int i = 0; i < 68; ++i) out[i] = {width - 1 - lm[perm[i]].x, lm[perm[i]].y};
  return out;
}

cv::Mat DrawFace(int width, int height, const std::vector<Point2>& lm, std::mt19937_64& rng,
                 const cv::Mat& background) {
  cv::Mat img = background.empty() ? Background(width, height, rng) : background.clone();
  Point2 eyes = Mean(lm, 36, 47), mouth = Mean(lm, 48, 59), chin = lm[8];
  double fh = std::hypot(chin.x - eyes.x, chin.y - eyes.y);
  Point2 up{eyes.x - mouth.x, eyes.y - mouth.y};
  double ul = std::max(1e-9, std::hypot(up.x, up.y));
  up = {up.x / ul, up.y / ul};
  // Skin: convex hull of the jaw and the brows raised into a forehead.
  std::vector<cv::Point> outline = FxRange(lm, 0, 16), hull;
  for (int i = 17; i <= 26; ++i) outline.push_back(Fx({lm[i].x + up.x * 0.45 * fh, lm[i].y + up.y * 0.45 * fh}));
  cv::convexHull(outline, hull);
  cv::Scalar skin(Uniform(rng, 90, 170), Uniform(rng, 120, 190), Uniform(rng, 160, 235));
  cv::fillConvexPoly(img, hull, skin, cv::LINE_AA, 4);
  const double lw = std::max(1.0, fh / 40);
  cv::Scalar dark(skin[0] * 0.35, skin[1] * 0.35, skin[2] * 0.4), shade(skin[0] * 0.7, skin[1] * 0.7, skin[2] * 0.75);
  // Brows, nose, eyes (white + iris), mouth (outer lip, dark inner).
  cv::polylines(img, FxRange(lm, 17, 21), false, dark, int(lw * 1.5), cv::LINE_AA, 4);
  cv::polylines(img, FxRange(lm, 22, 26), false, dark, int(lw * 1.5), cv::LINE_AA, 4);
  cv::polylines(img, FxRange(lm, 27, 30), false, shade, int(lw), cv::LINE_AA, 4);
  cv::polylines(img, FxRange(lm, 31, 35), false, shade, int(lw), cv::LINE_AA, 4);
  for (int e : {36, 42}) {
    std::vector<std::vector<cv::Point>> poly{FxRange(lm, e, e + 5)};
    cv::fillPoly(img, poly, cv::Scalar(235, 235, 235), cv::LINE_AA, 4);
    Point2 c = Mean(lm, e, e + 5);
    double r = 0.3 * std::hypot(lm[e + 3].x - lm[e].x, lm[e + 3].y - lm[e].y);
    cv::circle(img, Fx(c), static_cast<int>(r * 16), cv::Scalar(60, 50, 40), cv::FILLED, cv::LINE_AA, 4);
  }
  std::vector<std::vector<cv::Point>> lips{FxRange(lm, 48, 59)}, inner{FxRange(lm, 60, 67)};
  cv::fillPoly(img, lips, cv::Scalar(70, 60, 170), cv::LINE_AA, 4);
  cv::fillPoly(img, inner, cv::Scalar(40, 30, 90), cv::LINE_AA, 4);
  cv::GaussianBlur(img, img, cv::Size(3, 3), 0.8);
  return img;
}

int Write300wLpSample(const std::string& root_dir, std::mt19937_64& rng) {
  fs::path root(root_dir);
  const int W = 450, H = 450;
  int n = 0;
  for (const char* set : {"AFW", "HELEN", "LFPW"}) {
    fs::create_directories(root / set);
    fs::create_directories(root / (std::string(set) + "_Flip"));
    for (int k = 0; k < 2; ++k) {
      std::string name = std::string(set) == "LFPW"
                             ? fmt::format("LFPW_image_train_{:04d}_{}", UniformInt(rng, 1, 811), k)
                             : fmt::format("{}_{}_1_{}", set, UniformInt(rng, 100000, 999999), k);
      double roll, yaw, fw = Uniform(rng, 170, 230), cx = Uniform(rng, 205, 245), cy = Uniform(rng, 215, 245);
      std::vector<Point2> lm = RandomFace68(cx, cy, fw, rng, &roll, &yaw);
      cv::Mat img = DrawFace(W, H, lm, rng);
      FaceParams params = RandomParams(rng, roll, yaw, cx, H - 1 - cy, fw / 1.64 / 1e3);
      WriteJpeg(root / set / (name + ".jpg"), img);
      {
        MatWriter w((root / set / (name + ".mat")).string());
        w.Write("pt2d", Rows(lm));
        WriteParams(w, params, lm);
      }
      // Flipped copy: image mirrored left-right, landmarks mirrored with iBUG partners swapped.
      cv::Mat flipped;
      cv::flip(img, flipped, 1);
      std::vector<Point2> flm = FlipLandmarks68(lm, W);
      FaceParams fparams = params;
      fparams.pose[1] = -yaw;
      fparams.pose[2] = -roll;
      fparams.pose[3] = W - 1 - cx;
      WriteJpeg(root / (std::string(set) + "_Flip") / (name + ".jpg"), flipped);
      {
        MatWriter w((root / (std::string(set) + "_Flip") / (name + ".mat")).string());
        w.Write("pt2d", Rows(flm));
        WriteParams(w, fparams, flm);
      }
      if (std::string(set) == "AFW") {  // landmarks/<SET>/<name>_pts.mat for one set
        fs::create_directories(root / "landmarks" / set);
        std::vector<Point2> lm3d = lm;
        for (Point2& p : lm3d) p = {p.x + Normal(rng), p.y + Normal(rng)};
        MatWriter w((root / "landmarks" / set / (name + "_pts.mat")).string());
        w.Write("pts_2d", Columns(lm));
        w.Write("pts_3d", Columns(lm3d));
      }
      n += 2;
    }
  }
  return n;
}

int WriteAflw2000Sample(const std::string& root_dir, std::mt19937_64& rng) {
  fs::path root(root_dir);
  fs::create_directories(root);
  const int W = 450, H = 450;
  static const int k21[21] = {17, 19, 21, 22, 24, 26, 36, 39, 42, 45, 31, 30, 35, 48, 51, 54, 57, 2, 8, 14, 33};
  int n = 0;
  for (int id : {2, 4, 6, 8}) {
    std::string name = fmt::format("image{:05d}", id);
    double roll, yaw, fw = Uniform(rng, 150, 240), cx = Uniform(rng, 200, 250), cy = Uniform(rng, 210, 250);
    std::vector<Point2> lm = RandomFace68(cx, cy, fw, rng, &roll, &yaw);
    cv::Mat img = DrawFace(W, H, lm, rng);
    std::vector<double> z(68);
    for (double& v : z) v = Uniform(rng, -40, 40);
    std::vector<Point2> lm21;
    for (int i : k21) lm21.push_back(lm[i]);
    WriteJpeg(root / (name + ".jpg"), img);
    MatWriter w((root / (name + ".mat")).string());
    w.Write("pt3d_68", Rows(lm, &z));
    w.Write("pt2d", Rows(lm21));
    WriteParams(w, RandomParams(rng, roll, yaw, cx, H - 1 - cy, fw / 1.64 / 1e3), lm);
    ++n;
  }
  return n;
}

int WriteCelebaSample(const std::string& root_dir, std::mt19937_64& rng) {
  fs::path root(root_dir);
  fs::create_directories(root / "img_align_celeba");
  const int W = 178, H = 218, N = 6;
  std::ofstream lmf(root / "list_landmarks_align_celeba.txt"), part(root / "list_eval_partition.txt"),
      ident(root / "identity_CelebA.txt");
  lmf << N << "\n";
  lmf << "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y \n";
  for (int i = 1; i <= N; ++i) {
    std::string name = fmt::format("{:06d}.jpg", i);
    // Aligned CelebA: eyes near (69, 110) and (107, 112), face about 95 px wide.
    std::vector<Point2> lm = RandomFace68(Uniform(rng, 86, 92), Uniform(rng, 126, 132), Uniform(rng, 88, 100), rng);
    WriteJpeg(root / "img_align_celeba" / name, DrawFace(W, H, lm, rng));
    Landmarks l68;
    l68.convention = LandmarkConvention::kIbug68;
    l68.points = lm;
    Landmarks l5 = FiveFrom68(l68);
    lmf << name;
    for (const Point2& p : l5.points) lmf << fmt::format(" {:>4} {:>4}", std::lround(p.x), std::lround(p.y));
    lmf << "\n";
    part << name << " " << (i <= 4 ? 0 : i == 5 ? 1 : 2) << "\n";
    ident << name << " " << UniformInt(rng, 1, 10177) << "\n";
  }
  if (!lmf || !part || !ident) throw InputError(root_dir, "cannot write the CelebA list files");
  return N;
}

int WriteFolderSample(const std::string& root_dir, std::mt19937_64& rng) {
  fs::path root(root_dir);
  fs::create_directories(root / "group");
  auto face = [&](double cx, double cy, double fw) {
    Landmarks l;
    l.convention = LandmarkConvention::kIbug68;
    l.points = RandomFace68(cx, cy, fw, rng);
    return l;
  };
  // portrait.jpg: one face, 68-point .pts.
  Landmarks a = face(160, 130, 140);
  WriteJpeg(root / "portrait.jpg", DrawFace(320, 260, a.points, rng));
  WritePtsFile((root / "portrait.pts").string(), {a}, 0);
  // five.png: one face, 5-point .pts (PNG image).
  Landmarks b = face(150, 150, 150);
  if (!cv::imwrite((root / "five.png").string(), DrawFace(300, 300, b.points, rng)))
    throw InputError((root / "five.png").string(), "cannot write the image");
  WritePtsFile((root / "five.pts").string(), {FiveFrom68(b)}, 0);
  // group/pair.jpg: two faces in one image, two records in one .pts.
  Landmarks c1 = face(120, 140, 130), c2 = face(360, 150, 140);
  cv::Mat pair = DrawFace(480, 280, c1.points, rng);
  pair = DrawFace(480, 280, c2.points, rng, pair);
  WriteJpeg(root / "group" / "pair.jpg", pair);
  WritePtsFile((root / "group" / "pair.pts").string(), {c1, c2}, 0);
  return 3;
}

void SampleOptions::Check() const {
  if (out.empty()) throw UsageError("--out is required");
  std::stringstream ss(corpora);
  std::string c;
  while (std::getline(ss, c, ','))
    if (c != "all" && c != "300w-lp" && c != "aflw2000" && c != "celeba" && c != "folder")
      throw UsageError("--corpora: unknown corpus '" + c + "' (all, 300w-lp, aflw2000, celeba, folder)");
}

std::string SampleSummary::ToString() const {
  std::string s;
  for (const auto& [dir, n] : images) s += fmt::format("make-samples: {} images in {}\n", n, dir);
  return s;
}

SampleSummary MakeSamples(const SampleOptions& o) {
  o.Check();
  auto want = [&](const char* c) {
    return o.corpora == "all" || ("," + o.corpora + ",").find(std::string(",") + c + ",") != std::string::npos;
  };
  fs::path out(o.out);
  SampleSummary s;
  // One generator per corpus, seeded from (seed, corpus): each corpus is reproducible alone.
  auto rng_for = [&](uint64_t k) { return std::mt19937_64(o.seed * 0x9E3779B97F4A7C15ull + k); };
  if (want("300w-lp")) {
    auto rng = rng_for(1);
    s.images[(out / "300W-LP").string()] = Write300wLpSample((out / "300W-LP").string(), rng);
  }
  if (want("aflw2000")) {
    auto rng = rng_for(2);
    s.images[(out / "AFLW2000").string()] = WriteAflw2000Sample((out / "AFLW2000").string(), rng);
  }
  if (want("celeba")) {
    auto rng = rng_for(3);
    s.images[(out / "CelebA").string()] = WriteCelebaSample((out / "CelebA").string(), rng);
  }
  if (want("folder")) {
    auto rng = rng_for(4);
    s.images[(out / "folder").string()] = WriteFolderSample((out / "folder").string(), rng);
  }
  return s;
}

}  // namespace facebatch::io
