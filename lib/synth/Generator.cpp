#include "synth/Generator.h"

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/Colour.h"
#include "core/Error.h"
#include "io/Landmarks.h"
#include "render/Colour.h"
#include "render/Lighting.h"
#include "render/Projection.h"
#include "render/Render.h"

namespace facebatch::synth {

namespace {

constexpr double kPi = 3.14159265358979323846;

struct RC {
  double r = 0, c = 0;
};

double Smoothstep(double a, double b, double x) {
  double t = std::clamp((x - a) / (b - a), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

cv::Point Fx(double x, double y) {  // 4 fractional bits (cv drawing shift = 4)
  return cv::Point(static_cast<int>(std::lround(x * 16)), static_cast<int>(std::lround(y * 16)));
}

cv::Vec3f Col(double r, double g, double b) { return cv::Vec3f(float(r), float(g), float(b)); }

/// Smooth random field in [-1, 1] of size rows x cols: a coarse random grid resized (bicubic).
cv::Mat SmoothNoise(std::mt19937_64& rng, int rows, int cols, int grid, int channels = 1) {
  cv::Mat small(grid, grid, CV_32FC(channels));
  auto* p = small.ptr<float>();
  for (int i = 0; i < grid * grid * channels; ++i) p[i] = float(Uniform(rng, -1, 1));
  cv::Mat big;
  cv::resize(small, big, cv::Size(cols, rows), 0, 0, cv::INTER_CUBIC);
  return big;
}

}  // namespace

double Uniform(std::mt19937_64& rng, double a, double b) {
  return a + (b - a) * static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}
double Normal(std::mt19937_64& rng) {
  double u1 = std::max(Uniform(rng), 1e-300), u2 = Uniform(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
}
uint64_t ItemSeed(uint64_t seed, uint64_t stream, uint64_t index) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull ^ (stream + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
               (index + 1) * 0x94D049BB133111EBull;
  for (int k = 0; k < 2; ++k) {  // SplitMix64 finaliser
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
  }
  return z;
}

struct FaceGenerator::Impl {
  render::FaceTemplate tmpl;
  int U = 0, V = 0;
  std::vector<uint8_t> mask;       // U*V
  std::array<RC, 68> lm;           // landmark UV positions (row, col)
  RC eye[2], nose, mouth, brow[2], chin, cheek[2];
  double lip_row = 0;              // the line between the lips (mean row of the inner lip points)
  double mouth_half = 0;           // half mouth width (cols)
  double face_width = 0;           // cm (template x extent)
  double eye_height = 0;           // rows
  double center_col = 0;
  int nose_bottom_row = 0;

  RC Mean(int a, int b) const {
    RC m;
    for (int i = a; i <= b; ++i) m.r += lm[i].r / (b - a + 1), m.c += lm[i].c / (b - a + 1);
    return m;
  }
  double Gauss(int r, int c, const RC& p, double sr, double sc) const {
    double dr = (r - p.r) / sr, dc = (c - p.c) / sc;
    return std::exp(-0.5 * (dr * dr + dc * dc));
  }
  std::vector<cv::Point> Poly(int a, int b) const {
    std::vector<cv::Point> out;
    for (int i = a; i <= b; ++i) out.push_back(Fx(lm[i].c, lm[i].r));
    return out;
  }
};

FaceGenerator::FaceGenerator(int uv_rows, int uv_cols) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.tmpl = render::DefaultTemplate(uv_rows, uv_cols);
  m.U = uv_rows;
  m.V = uv_cols;
  auto mk = m.tmpl.topology.mask.to(torch::kUInt8).contiguous();
  m.mask.assign(mk.data_ptr<uint8_t>(), mk.data_ptr<uint8_t>() + m.U * m.V);
  auto lmuv = m.tmpl.landmarks68_uv.to(torch::kDouble).contiguous();
  auto la = lmuv.accessor<double, 2>();
  for (int i = 0; i < 68; ++i) m.lm[i] = {la[i][0], la[i][1]};
  m.eye[0] = m.Mean(36, 41);
  m.eye[1] = m.Mean(42, 47);
  m.nose = m.lm[30];
  m.mouth = m.Mean(48, 59);
  m.brow[0] = m.Mean(17, 21);
  m.brow[1] = m.Mean(22, 26);
  m.chin = m.lm[8];
  m.lip_row = m.Mean(60, 67).r;
  m.mouth_half = 0.5 * std::abs(m.lm[54].c - m.lm[48].c);
  m.center_col = 0.5 * (m.V - 1);
  for (int k = 0; k < 2; ++k) {
    const RC& e = m.eye[k];
    m.cheek[k] = {0.5 * (e.r + m.mouth.r), e.c + (k == 0 ? -1 : 1) * 0.02 * m.V};
  }
  m.eye_height = std::max(1.0, std::abs(m.Mean(40, 41).r - m.Mean(37, 38).r));
  m.nose_bottom_row = int(std::lround(m.lm[33].r));
  auto sh = m.tmpl.mean_shape.contiguous();
  auto sa = sh.accessor<float, 3>();
  double x0 = 1e30, x1 = -1e30;
  for (int r = 0; r < m.U; ++r)
    for (int c = 0; c < m.V; ++c)
      if (m.mask[r * m.V + c]) x0 = std::min<double>(x0, sa[0][r][c]), x1 = std::max<double>(x1, sa[0][r][c]);
  m.face_width = x1 - x0;
}

FaceGenerator::~FaceGenerator() = default;

const render::FaceTemplate& FaceGenerator::face_template() const { return impl_->tmpl; }

Identity FaceGenerator::RandomIdentity(std::mt19937_64& rng, double facial_hair_prob) const {
  const Impl& m = *impl_;
  const int U = m.U, V = m.V;
  // ---- shape: smooth deformation fields in UV space (cm) ----
  const double width = 1 + 0.06 * Normal(rng), height = 1 + 0.05 * Normal(rng), depth = 1 + 0.07 * Normal(rng);
  const double jaw = 0.10 * Normal(rng), chin_drop = 0.35 * Normal(rng), chin_fwd = 0.3 * Normal(rng);
  const double nose_out = 0.45 * Normal(rng), nose_wide = 0.15 * Normal(rng), nose_len = 0.25 * Normal(rng);
  const double eye_apart = 0.25 * Normal(rng), eye_deep = 0.3 * Normal(rng), eye_up = 0.15 * Normal(rng);
  const double lip_full = 0.25 * Normal(rng), mouth_wide = 0.12 * Normal(rng);
  const double brow_up = 0.2 * Normal(rng), brow_out = 0.25 * Normal(rng), cheekbone = 0.06 * Normal(rng);
  const RC asym{Uniform(rng, 0.2, 0.8) * U, Uniform(rng, 0.2, 0.8) * V};
  const double asym_z = 0.3 * Normal(rng), asym_y = 0.2 * Normal(rng), asym_s = Uniform(rng, 0.08, 0.2) * V;
  struct Wave { double fr, fc, ph, amp; };
  std::vector<Wave> waves;
  for (int k = 0; k < 6; ++k)
    waves.push_back({Uniform(rng, -4, 4) * 2 * kPi / U, Uniform(rng, -4, 4) * 2 * kPi / V, Uniform(rng, 0, 2 * kPi),
                     0.08 * Normal(rng)});
  const double es = 0.09 * V, ns = 0.07 * V, ms = 0.08 * V, bs = 0.06 * V;
  auto shape = m.tmpl.mean_shape.clone().contiguous();
  auto s = shape.accessor<float, 3>();
  const double lower0 = m.mouth.r - 0.05 * U, lower1 = m.chin.r;
  for (int r = 0; r < U; ++r)
    for (int c = 0; c < V; ++c) {
      if (!m.mask[r * V + c]) continue;
      double X = s[0][r][c], Y = s[1][r][c], Z = s[2][r][c];
      const double side = c < m.center_col ? -1 : 1;
      const double lower = Smoothstep(lower0, lower1, r);
      const double g_nose = m.Gauss(r, c, m.nose, ns, ns * 0.8);
      const double g_mouth = m.Gauss(r, c, m.mouth, ms * 0.6, ms);
      const double g_chin = m.Gauss(r, c, m.chin, 0.08 * U, 0.12 * V);
      double g_eye = 0, g_brow = 0, g_cheek = 0;
      for (int k = 0; k < 2; ++k) {
        g_eye += m.Gauss(r, c, m.eye[k], es * 0.7, es);
        g_brow += m.Gauss(r, c, m.brow[k], bs * 0.6, bs * 1.6);
        g_cheek += m.Gauss(r, c, m.cheek[k], 0.1 * U, 0.1 * V);
      }
      X *= width * (1 + jaw * lower + cheekbone * g_cheek);
      Y *= height;
      Z *= depth;
      Y -= chin_drop * g_chin;
      Z += chin_fwd * g_chin;
      Z += nose_out * g_nose;
      X += nose_wide * g_nose * X;
      Y -= nose_len * m.Gauss(r, c, m.nose, ns * 0.5, ns * 0.5);
      X += side * eye_apart * g_eye;
      Z -= eye_deep * g_eye;
      Y += eye_up * g_eye;
      Z += lip_full * g_mouth;
      X += mouth_wide * g_mouth * X;
      Y += brow_up * g_brow;
      Z += brow_out * g_brow;
      double g_asym = m.Gauss(r, c, asym, asym_s, asym_s);
      Z += asym_z * g_asym;
      Y += asym_y * g_asym;
      for (const Wave& w : waves) Z += w.amp * std::sin(w.fr * r + w.fc * c + w.ph);
      s[0][r][c] = float(X), s[1][r][c] = float(Y), s[2][r][c] = float(Z);
    }

  // ---- albedo: painted in UV space (linear RGB, cv::Mat rows = U, cols = V) ----
  // Skin tone: log-interpolation between a light and a dark linear-RGB tone, with hue jitter.
  const double tone = std::pow(Uniform(rng), 1.5);  // lighter tones a little more often
  auto lerp_log = [&](double a, double b) { return std::exp(std::log(a) * (1 - tone) + std::log(b) * tone); };
  cv::Vec3f skin = Col(lerp_log(0.78, 0.075), lerp_log(0.52, 0.040), lerp_log(0.40, 0.024));
  skin[0] *= float(1 + 0.06 * Normal(rng));
  skin[1] *= float(1 + 0.05 * Normal(rng));
  skin[2] *= float(1 + 0.07 * Normal(rng));
  cv::Mat alb(U, V, CV_32FC3, cv::Scalar(skin[0], skin[1], skin[2]));
  // Large-scale tone variation and fine detail (pores, freckles).
  cv::Mat low = SmoothNoise(rng, U, V, 5, 3), fine = SmoothNoise(rng, U, V, std::max(8, V / 3), 1);
  const double low_amp = Uniform(rng, 0.03, 0.10), fine_amp = Uniform(rng, 0.02, 0.06);
  for (int r = 0; r < U; ++r)
    for (int c = 0; c < V; ++c) {
      cv::Vec3f& a = alb.at<cv::Vec3f>(r, c);
      const cv::Vec3f& l = low.at<cv::Vec3f>(r, c);
      const float f = float(1 + fine_amp * fine.at<float>(r, c) + 0.015 * Normal(rng));
      for (int k = 0; k < 3; ++k) a[k] *= float(1 + low_amp * l[k]) * f;
    }
  auto blend = [&](const cv::Mat& w, const cv::Vec3f& col, double amount) {
    for (int r = 0; r < U; ++r)
      for (int c = 0; c < V; ++c) {
        const float t = float(amount) * w.at<float>(r, c);
        if (t <= 0) continue;
        cv::Vec3f& a = alb.at<cv::Vec3f>(r, c);
        a = a * (1 - t) + col * t;
      }
  };
  auto scaled = [&](double kr, double kg, double kb) { return Col(skin[0] * kr, skin[1] * kg, skin[2] * kb); };
  auto weight = [&](const std::function<double(int, int)>& f) {
    cv::Mat w(U, V, CV_32F);
    for (int r = 0; r < U; ++r)
      for (int c = 0; c < V; ++c) w.at<float>(r, c) = float(f(r, c));
    return w;
  };
  const double px = std::max(1.0, V / 112.0);  // UV pixels per paper-size pixel unit (drawing widths)
  // Cheek blush and darker eye sockets.
  blend(weight([&](int r, int c) { return m.Gauss(r, c, m.cheek[0], 0.08 * U, 0.08 * V) + m.Gauss(r, c, m.cheek[1], 0.08 * U, 0.08 * V); }),
        scaled(1.15, 0.8, 0.8), Uniform(rng, 0.1, 0.45));
  blend(weight([&](int r, int c) {
          return m.Gauss(r, c, {m.eye[0].r + 0.3 * m.eye_height, m.eye[0].c}, 0.05 * U, 0.07 * V) +
                 m.Gauss(r, c, {m.eye[1].r + 0.3 * m.eye_height, m.eye[1].c}, 0.05 * U, 0.07 * V);
        }),
        scaled(0.7, 0.62, 0.65), Uniform(rng, 0.15, 0.5));
  // Hair colour (brows, facial hair): black, brown, blond, red, grey.
  static const double kHair[5][3] = {{0.02, 0.015, 0.012}, {0.08, 0.04, 0.02}, {0.45, 0.32, 0.15},
                                     {0.35, 0.10, 0.03}, {0.35, 0.33, 0.30}};
  const int hair_kind = std::min(4, int(Uniform(rng, 0, 5)));
  cv::Vec3f hair = Col(kHair[hair_kind][0], kHair[hair_kind][1], kHair[hair_kind][2]) * float(Uniform(rng, 0.7, 1.3));
  // Brows: thick polylines, blurred, with hair texture.
  {
    cv::Mat w = cv::Mat::zeros(U, V, CV_32F);
    const int thick = std::max(1, int(std::lround(Uniform(rng, 1.5, 3.5) * px)));
    cv::polylines(w, std::vector<std::vector<cv::Point>>{m.Poly(17, 21), m.Poly(22, 26)}, false, cv::Scalar(1), thick,
                  cv::LINE_AA, 4);
    cv::GaussianBlur(w, w, cv::Size(0, 0), 0.6 * px);
    blend(w, hair, Uniform(rng, 0.55, 0.95));
  }
  // Lips.
  cv::Vec3f lip = scaled(Uniform(rng, 0.75, 1.0), Uniform(rng, 0.4, 0.6), Uniform(rng, 0.42, 0.65));
  {
    cv::Mat w = cv::Mat::zeros(U, V, CV_32F);
    cv::fillPoly(w, std::vector<std::vector<cv::Point>>{m.Poly(48, 59)}, cv::Scalar(1), cv::LINE_AA, 4);
    cv::GaussianBlur(w, w, cv::Size(0, 0), 0.5 * px);
    blend(w, lip, Uniform(rng, 0.6, 0.95));
  }
  // Facial hair (beard / moustache / stubble) on some faces.
  if (Uniform(rng) < facial_hair_prob) {
    const double density = Uniform(rng, 0.35, 0.95);
    const bool full = Uniform(rng) < 0.6;
    cv::Mat grain = SmoothNoise(rng, U, V, std::max(10, V / 2), 1);
    blend(weight([&](int r, int c) {
            const double below_nose = Smoothstep(m.nose_bottom_row, m.nose_bottom_row + 0.02 * U, r);
            const double lateral = std::abs(c - m.center_col) / (0.5 * V);
            const double moustache = below_nose * (r < m.lip_row) * (std::abs(c - m.center_col) < 1.3 * m.mouth_half);
            const double beard = full ? Smoothstep(m.lip_row, m.lip_row + 0.04 * U, r) * (lateral < 0.85) : 0;
            const double w = std::max(moustache, beard) * (0.6 + 0.4 * grain.at<float>(r, c));
            return w;
          }),
          hair, density);
  }
  // Blemishes / moles.
  {
    const int n = int(Uniform(rng, 0, 14));
    cv::Mat w = cv::Mat::zeros(U, V, CV_32F);
    for (int k = 0; k < n; ++k) {
      const double r = Uniform(rng, 0.15, 0.9) * U, c = Uniform(rng, 0.1, 0.9) * V;
      cv::circle(w, Fx(c, r), int(16 * Uniform(rng, 0.3, 1.0) * px), cv::Scalar(Uniform(rng, 0.3, 1)), cv::FILLED,
                 cv::LINE_AA, 4);
    }
    blend(w, scaled(Uniform(rng, 0.45, 0.9), 0.45, 0.42), 0.8);
  }
  // Eyes: open (sclera, iris, pupil, lash line) or closed (lid + lash line).
  cv::Mat alb_closed = alb.clone();
  {
    static const double kIris[4][3] = {{0.035, 0.018, 0.01}, {0.07, 0.035, 0.015}, {0.035, 0.07, 0.11}, {0.04, 0.07, 0.035}};
    const int ik = std::min(3, int(Uniform(rng, 0, 4)));
    const cv::Vec3f iris = Col(kIris[ik][0], kIris[ik][1], kIris[ik][2]);
    const cv::Vec3f sclera = Col(0.62, 0.58, 0.55) * float(Uniform(rng, 0.8, 1.0));
    const cv::Vec3f lash = Col(0.02, 0.015, 0.012);
    for (int k = 0; k < 2; ++k) {
      const int a = k == 0 ? 36 : 42;
      cv::Mat eye_w = cv::Mat::zeros(U, V, CV_32F);
      cv::fillPoly(eye_w, std::vector<std::vector<cv::Point>>{m.Poly(a, a + 5)}, cv::Scalar(1), cv::LINE_AA, 4);
      cv::Mat iris_w = cv::Mat::zeros(U, V, CV_32F), pupil_w = cv::Mat::zeros(U, V, CV_32F);
      const RC e = m.eye[k];
      const double ew = std::abs(m.lm[a + 3].c - m.lm[a].c);
      cv::circle(iris_w, Fx(e.c, e.r), int(16 * 0.22 * ew), cv::Scalar(1), cv::FILLED, cv::LINE_AA, 4);
      cv::circle(pupil_w, Fx(e.c, e.r), int(16 * 0.09 * ew), cv::Scalar(1), cv::FILLED, cv::LINE_AA, 4);
      cv::Mat lid_w = cv::Mat::zeros(U, V, CV_32F);
      std::vector<cv::Point> upper{Fx(m.lm[a].c, m.lm[a].r), Fx(m.lm[a + 1].c, m.lm[a + 1].r),
                                   Fx(m.lm[a + 2].c, m.lm[a + 2].r), Fx(m.lm[a + 3].c, m.lm[a + 3].r)};
      cv::polylines(lid_w, std::vector<std::vector<cv::Point>>{upper}, false, cv::Scalar(1),
                    std::max(1, int(std::lround(px))), cv::LINE_AA, 4);
      blend(eye_w, sclera, 1.0);
      blend(iris_w.mul(eye_w), iris, 1.0);
      blend(pupil_w.mul(eye_w), lash, 1.0);
      blend(lid_w, lash, 0.8);
      // Closed: the lid (slightly darker skin) with the lash line along the lower lid.
      cv::Mat saved = alb;
      alb = alb_closed;
      blend(eye_w, scaled(0.85, 0.78, 0.78), 1.0);
      cv::Mat low_w = cv::Mat::zeros(U, V, CV_32F);
      std::vector<cv::Point> lower{Fx(m.lm[a].c, m.lm[a].r), Fx(m.lm[a + 5].c, m.lm[a + 5].r),
                                   Fx(m.lm[a + 4].c, m.lm[a + 4].r), Fx(m.lm[a + 3].c, m.lm[a + 3].r)};
      cv::polylines(low_w, std::vector<std::vector<cv::Point>>{lower}, false, cv::Scalar(1),
                    std::max(1, int(std::lround(px))), cv::LINE_AA, 4);
      blend(low_w, lash, 0.8);
      alb_closed = alb;
      alb = saved;
    }
  }
  // Mouth interior weight: the two UV rows straddling the lip line, between the corners.
  auto dark = torch::zeros({U, V});
  {
    auto d = dark.accessor<float, 2>();
    const int ra = int(std::floor(m.lip_row));
    for (int r = ra; r <= ra + 1; ++r)
      for (int c = 0; c < V; ++c) {
        if (r < 0 || r >= U) continue;
        const double t = std::abs(c - m.center_col) / (0.92 * m.mouth_half);
        if (t < 1) d[r][c] = float(std::sqrt(1 - t * t));
      }
  }
  auto to_tensor = [&](const cv::Mat& img) {
    auto t = torch::from_blob(img.data, {U, V, 3}, torch::kFloat).permute({2, 0, 1}).clone();
    return (t.clamp(0, 1) * m.tmpl.topology.mask.to(torch::kFloat).unsqueeze(0)).contiguous();
  };
  Identity id;
  id.shape_uv = (shape * m.tmpl.topology.mask.to(torch::kFloat).unsqueeze(0)).contiguous();
  id.albedo_uv = to_tensor(alb.isContinuous() ? alb : alb.clone());
  id.eye_closed_albedo_uv = to_tensor(alb_closed.isContinuous() ? alb_closed : alb_closed.clone());
  id.mouth_dark = dark;
  id.skin = {skin[0], skin[1], skin[2]};
  id.hair = {hair[0], hair[1], hair[2]};
  id.hair_volume = Uniform(rng) < 0.1 ? 0 : Uniform(rng, 0.9, 1.25);
  return id;
}

Placement FaceGenerator::RandomPlacement(std::mt19937_64& rng, int width, int height, const SceneOptions& o) const {
  Placement p;
  const double d2r = kPi / 180;
  p.yaw = Uniform(rng, -o.yaw_max, o.yaw_max) * d2r;
  p.pitch = Uniform(rng, -o.pitch_max, o.pitch_max) * d2r;
  p.roll = Uniform(rng, -o.roll_max, o.roll_max) * d2r;
  p.scale = Uniform(rng, o.face_min, o.face_max) * width / impl_->face_width;
  p.tx = 0.5 * (width - 1) + Uniform(rng, -0.08, 0.08) * width;
  p.ty = 0.5 * (height - 1) + Uniform(rng, -0.06, 0.08) * height;
  return p;
}

at::Tensor FaceGenerator::PlacementM(const Placement& p) {
  auto opt = torch::TensorOptions().dtype(torch::kFloat);
  auto R = render::RotationFromPoseAngles(torch::tensor({p.pitch}, opt), torch::tensor({p.yaw}, opt),
                                          torch::tensor({p.roll}, opt));
  return render::ComposeM(torch::tensor({p.scale}, opt), R, torch::tensor({{p.tx, p.ty}}, opt))[0].contiguous();
}

at::Tensor FaceGenerator::ProjectLandmarks(const at::Tensor& shape_uv, const at::Tensor& M) const {
  const auto& topo = impl_->tmpl.topology;
  auto verts = render::VerticesFromUVMap(topo, shape_uv.unsqueeze(0));
  auto lmv = verts.index_select(1, topo.landmarks68);
  return render::ProjectVertices(M.unsqueeze(0), lmv)[0].contiguous();
}

namespace {

/// A random SH lighting: coloured ambient + a directional light projected on the
/// clamped-cosine kernel (Ramamoorthi & Hanrahan: A0 = pi, A1 = 2pi/3, A2 = pi/4, / pi).
at::Tensor RandomLighting(std::mt19937_64& rng) {
  const bool strong = Uniform(rng) < 0.3, coloured = Uniform(rng) < 0.3;
  const double ambient = strong ? Uniform(rng, 0.25, 0.5) : Uniform(rng, 0.6, 1.0);
  const double directional = strong ? Uniform(rng, 0.9, 1.4) : Uniform(rng, 0.1, 0.5);
  double dx = Uniform(rng, -1, 1), dy = Uniform(rng, -0.5, 1), dz = Uniform(rng, strong ? 0 : 0.3, 1);
  const double n = std::sqrt(dx * dx + dy * dy + dz * dz) + 1e-12;
  auto basis = render::SHBasis(torch::tensor({dx / n, dy / n, dz / n}, torch::kFloat).view({1, 3}))[0];
  auto tint = [&](double spread) {
    return std::array<double, 3>{1 + spread * Normal(rng), 1 + spread * Normal(rng), 1 + spread * Normal(rng)};
  };
  auto ta = tint(coloured ? 0.2 : 0.04), td = tint(coloured ? 0.35 : 0.05);
  static const double kBand[9] = {1, 2. / 3, 2. / 3, 2. / 3, 0.25, 0.25, 0.25, 0.25, 0.25};
  auto L = torch::zeros({27});
  auto la = L.accessor<float, 1>();
  auto ba = basis.accessor<float, 1>();
  for (int c = 0; c < 3; ++c) {
    la[9 * c] += float(std::max(0.05, ta[c]) * ambient / render::kSHConstant0);
    for (int k = 0; k < 9; ++k) la[9 * c + k] += float(std::max(0.05, td[c]) * directional * kBand[k] * ba[k]);
    for (int k = 4; k < 9; ++k) la[9 * c + k] += float(0.05 * Normal(rng));
  }
  return L;
}

cv::Mat RandomBackground(std::mt19937_64& rng, int W, int H) {
  cv::Mat bg(H, W, CV_32FC3);
  cv::Vec3f c0 = Col(Uniform(rng, 20, 235), Uniform(rng, 20, 235), Uniform(rng, 20, 235));
  cv::Vec3f c1 = Col(Uniform(rng, 20, 235), Uniform(rng, 20, 235), Uniform(rng, 20, 235));
  const double ang = Uniform(rng, 0, 2 * kPi), ca = std::cos(ang), sa = std::sin(ang);
  cv::Mat tex = SmoothNoise(rng, H, W, int(Uniform(rng, 3, 24)), 3);
  const float tex_amp = float(Uniform(rng, 10, 60));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const double t = std::clamp(0.5 + ((x - W / 2.0) * ca + (y - H / 2.0) * sa) / std::max(W, H), 0.0, 1.0);
      bg.at<cv::Vec3f>(y, x) = c0 * float(1 - t) + c1 * float(t) + tex.at<cv::Vec3f>(y, x) * tex_amp;
    }
  // Clutter: rectangles, circles, lines.
  const int n = int(Uniform(rng, 2, 14));
  for (int k = 0; k < n; ++k) {
    cv::Scalar col(Uniform(rng, 0, 255), Uniform(rng, 0, 255), Uniform(rng, 0, 255));
    const double x = Uniform(rng, 0, W), y = Uniform(rng, 0, H), s = Uniform(rng, 0.03, 0.35) * W;
    switch (int(Uniform(rng, 0, 3))) {
      case 0:
        cv::rectangle(bg, Fx(x, y), Fx(x + s, y + s * Uniform(rng, 0.3, 2)), col, cv::FILLED, cv::LINE_AA, 4);
        break;
      case 1:
        cv::circle(bg, Fx(x, y), int(16 * s / 2), col, cv::FILLED, cv::LINE_AA, 4);
        break;
      default:
        cv::line(bg, Fx(x, y), Fx(x + Uniform(rng, -1, 1) * s * 2, y + Uniform(rng, -1, 1) * s * 2), col,
                 int(Uniform(rng, 1, 8)), cv::LINE_AA, 4);
    }
  }
  const double blur = Uniform(rng, 0, 3);
  if (blur > 0.3) cv::GaussianBlur(bg, bg, cv::Size(0, 0), blur);
  cv::Mat out;
  bg.convertTo(out, CV_8UC3);
  return out;
}

/// sRGB 8-bit BGR of a linear colour lit by L from the front (normal (0, 0, 1)) times `k`.
cv::Scalar LitColour(const std::array<float, 3>& rgb, const at::Tensor& L, double k) {
  auto basis = render::SHBasis(torch::tensor({0.f, 0.f, 1.f}).view({1, 3}))[0];
  double out[3];
  for (int c = 0; c < 3; ++c) {
    const double shade = (L.slice(0, 9 * c, 9 * c + 9) * basis).sum().item<float>();
    out[c] = 255 * LinearToSrgb(rgb[c] * shade * k);
  }
  return cv::Scalar(out[2], out[1], out[0]);
}

/// The head (hair, or skin when bald) and the neck behind the face: convex hulls
/// of projected ellipsoid / cylinder points (model space, cm), filled and textured.
void DrawHeadAndNeck(cv::Mat& bg, const Identity& id, const at::Tensor& M, const at::Tensor& L, std::mt19937_64& rng) {
  auto project = [&](const std::vector<std::array<float, 3>>& pts) {
    auto X = torch::from_blob(const_cast<std::array<float, 3>*>(pts.data()), {1, int64_t(pts.size()), 3}, torch::kFloat);
    auto p = render::ProjectVertices(M.unsqueeze(0), X)[0].contiguous();
    auto a = p.accessor<float, 2>();
    std::vector<cv::Point> out, hull;
    for (int64_t i = 0; i < p.size(0); ++i) out.push_back(Fx(a[i][0], a[i][1]));
    cv::convexHull(out, hull);
    return hull;
  };
  // Neck: a cylinder under the head.
  std::vector<std::array<float, 3>> neck;
  const float nr = float(Uniform(rng, 4.5, 5.8));
  for (int k = 0; k < 24; ++k) {
    const float a = float(2 * kPi * k / 24);
    for (float y : {-6.f, -30.f}) neck.push_back({nr * std::cos(a), y, -3.5f + nr * std::sin(a)});
  }
  cv::fillConvexPoly(bg, project(neck), LitColour(id.skin, L, 0.8), cv::LINE_AA, 4);
  // Head: an ellipsoid around the skull; hair covers it unless bald.
  const double v = id.hair_volume;
  const float rx = float((v > 0 ? 8.6 : 8.0) * std::max(v, 1.0)), ry = float(11.0 * std::max(v, 1.0) - 0.5),
              rz = float(10.5 * std::max(v, 1.0));
  std::vector<std::array<float, 3>> head;
  for (int i = 0; i <= 12; ++i)
    for (int j = 0; j < 24; ++j) {
      const double th = kPi * i / 12, ph = 2 * kPi * j / 24;
      head.push_back({float(rx * std::sin(th) * std::cos(ph)), float(2.0 + ry * std::cos(th)),
                      float(-4.0 + rz * std::sin(th) * std::sin(ph))});
    }
  const cv::Scalar head_col = v > 0 ? LitColour(id.hair, L, 0.9) : LitColour(id.skin, L, 0.85);
  cv::Mat layer = cv::Mat::zeros(bg.size(), CV_8U);
  cv::fillConvexPoly(layer, project(head), cv::Scalar(255), cv::LINE_AA, 4);
  cv::Mat grain = SmoothNoise(rng, bg.rows, bg.cols, std::max(8, bg.cols / 10), 1);
  for (int y = 0; y < bg.rows; ++y)
    for (int x = 0; x < bg.cols; ++x) {
      const uint8_t a = layer.at<uint8_t>(y, x);
      if (!a) continue;
      const double t = a / 255.0, g = 1 + 0.12 * grain.at<float>(y, x);
      cv::Vec3b& p = bg.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) p[c] = cv::saturate_cast<uchar>((1 - t) * p[c] + t * head_col[c] * g);
    }
}

}  // namespace

SynthFace FaceGenerator::Render(const Identity& id, const at::Tensor& M, const Placement& pose, int W, int H,
                                std::mt19937_64& rng, const SceneOptions& o) const {
  const Impl& m = *impl_;
  const int U = m.U, V = m.V;
  SynthFace f;
  // ---- expression: mouth opening and eye closing as shape offsets ----
  double open = 0, closed = 0;
  if (Uniform(rng) < o.expression_prob) {
    const double kind = Uniform(rng);
    if (kind < 0.45) open = Uniform(rng, 0.2, 1.0);
    else if (kind < 0.75) closed = 1;
    else open = Uniform(rng, 0.2, 1.0), closed = Uniform(rng) < 0.5 ? 1 : 0;
  }
  f.mouth_open = open;
  f.eyes_closed = closed;
  auto shape = id.shape_uv.clone();
  if (open > 0 || closed > 0) {
    auto s = shape.accessor<float, 3>();
    const double drop = 1.6 * open;  // cm at the lower lip
    for (int r = 0; r < U; ++r)
      for (int c = 0; c < V; ++c) {
        if (!m.mask[r * V + c]) continue;
        if (open > 0 && r > m.lip_row) {
          // The lower lip and the jaw move down; the mouth corners stay; the
          // opening widens towards the chin so the whole jaw drops.
          const double half = m.mouth_half + 0.9 * (r - m.lip_row);
          const double t = std::abs(c - m.center_col) / half;
          const double w = t < 1 ? std::sqrt(1 - t * t) : 0;
          s[1][r][c] -= float(drop * w);
          s[2][r][c] -= float(0.25 * drop * w);
        }
        if (closed > 0)
          for (int k = 0; k < 2; ++k) {  // upper lid moves down over the eye
            const RC& e = m.eye[k];
            if (r > e.r) continue;
            const double w = m.Gauss(r, c, e, 1.2 * m.eye_height, 0.08 * V);
            s[1][r][c] -= float(0.2 * closed * w);
            s[2][r][c] += float(0.05 * closed * w);
          }
      }
  }
  auto albedo = id.albedo_uv + closed * (id.eye_closed_albedo_uv - id.albedo_uv);
  if (open > 0) {
    auto inside = torch::tensor({0.06f, 0.015f, 0.015f}).view({3, 1, 1});
    auto w = (id.mouth_dark * float(std::min(1.0, 2.5 * open))).unsqueeze(0);
    albedo = albedo + w * (inside - albedo);
  }
  albedo = (albedo * m.tmpl.topology.mask.to(torch::kFloat).unsqueeze(0)).contiguous();
  f.shape_uv = shape.contiguous();
  f.albedo_uv = albedo;
  f.M = M.to(torch::kFloat).contiguous();
  f.L = RandomLighting(rng);
  // ---- render and composite ----
  const auto& topo = m.tmpl.topology;
  auto sv = render::VerticesFromUVMap(topo, f.shape_uv.unsqueeze(0));
  auto av = render::VerticesFromUVMap(topo, f.albedo_uv.unsqueeze(0));
  torch::NoGradGuard ng;
  auto res = render::Render(topo, sv, av, f.M.unsqueeze(0), f.L.unsqueeze(0), H, W);
  cv::Mat face = render::LinearRgbToSrgbBgr8(res.image[0]);
  auto mk = (res.mask[0][0] > 0.5).to(torch::kUInt8).mul(255).contiguous();
  f.coverage = cv::Mat(H, W, CV_8U, mk.data_ptr<uint8_t>()).clone();
  cv::Mat bg = RandomBackground(rng, W, H);
  DrawHeadAndNeck(bg, id, f.M, f.L, rng);
  // Composite: sharp inside, premultiplied blur across the silhouette (anti-aliasing).
  cv::Mat alpha, facef, prem, bgf;
  f.coverage.convertTo(alpha, CV_32F, 1 / 255.0);
  face.convertTo(facef, CV_32FC3);
  bg.convertTo(bgf, CV_32FC3);
  cv::Mat alpha3;
  cv::merge(std::vector<cv::Mat>{alpha, alpha, alpha}, alpha3);
  prem = facef.mul(alpha3);
  cv::Mat prem_b, alpha_b;
  cv::GaussianBlur(prem, prem_b, cv::Size(3, 3), 0.7);
  cv::GaussianBlur(alpha3, alpha_b, cv::Size(3, 3), 0.7);
  cv::Mat sharp = prem + bgf.mul(cv::Scalar(1, 1, 1) - alpha3);
  cv::Mat soft = prem_b + bgf.mul(cv::Scalar(1, 1, 1) - alpha_b);
  cv::Mat img(H, W, CV_32FC3);
  const double noise = Uniform(rng, 0, 3);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const float ab = alpha_b.at<cv::Vec3f>(y, x)[0];
      const bool edge = ab > 0.001f && ab < 0.999f;
      img.at<cv::Vec3f>(y, x) = (edge ? soft : sharp).at<cv::Vec3f>(y, x);
    }
  if (noise > 0.2) {
    cv::Mat nz(H, W, CV_32FC3);
    auto* p = nz.ptr<float>();
    for (int i = 0; i < H * W * 3; ++i) p[i] = float(noise * Normal(rng));
    img += nz;
  }
  img.convertTo(f.image, CV_8UC3);
  // ---- ground truth: landmarks, visibility, pose ----
  auto lm = ProjectLandmarks(f.shape_uv, f.M);
  auto la = lm.accessor<float, 2>();
  auto vis = res.visibility[0].index_select(0, topo.landmarks68).to(torch::kUInt8).contiguous();
  for (int i = 0; i < 68; ++i) {
    f.landmarks[2 * i] = la[i][0];
    f.landmarks[2 * i + 1] = la[i][1];
    f.visible[i] = vis.data_ptr<uint8_t>()[i];
  }
  auto angles = render::PoseAnglesFromRotation(render::DecomposeM(f.M.unsqueeze(0)).rotation)[0];
  const double r2d = 180 / kPi;
  f.pose = {float(angles[1].item<float>() * r2d), float(angles[0].item<float>() * r2d),
            float(angles[2].item<float>() * r2d)};
  (void)pose;
  // ---- optional occluder (drawn after the ground truth: it hides part of the face) ----
  if (Uniform(rng) < o.occluder_prob) {
    const int i = int(Uniform(rng, 0, 68));
    const double fw = m.face_width * render::DecomposeM(f.M.unsqueeze(0)).scale[0].item<float>();
    const double cx = la[i][0], cy = la[i][1], s = Uniform(rng, 0.15, 0.4) * fw;
    const cv::Scalar col(Uniform(rng, 0, 255), Uniform(rng, 0, 255), Uniform(rng, 0, 255));
    if (Uniform(rng) < 0.5) {
      // Draw order as GCC evaluated the former one-call form (angle first): same seed, same images.
      const double angle = Uniform(rng, 0, 180);
      const int a = int(16 * s), b = int(16 * s * Uniform(rng, 0.4, 1));
      cv::ellipse(f.image, Fx(cx, cy), cv::Size(a, b), angle, 0, 360, col, cv::FILLED, cv::LINE_AA, 4);
      f.occluder = {1.f, float(Fx(cx, cy).x / 16.0), float(Fx(cx, cy).y / 16.0), float(a / 16.0), float(b / 16.0),
                    float(angle)};
    } else {
      cv::rectangle(f.image, Fx(cx - s, cy - s * 0.4), Fx(cx + s, cy + s * 0.4), col, cv::FILLED, cv::LINE_AA, 4);
      f.occluder = {2.f, float(cx), float(cy), float(s), float(s * 0.4), 0.f};
    }
  }
  return f;
}

SynthFace FaceGenerator::Mirror(const SynthFace& face, int W) const {
  SynthFace f = face;
  f.shape_uv = render::FlipUVMap(face.shape_uv).clone();
  f.shape_uv[0].neg_();
  f.albedo_uv = render::FlipUVMap(face.albedo_uv).contiguous();
  f.shape_uv = f.shape_uv.contiguous();
  // x' = W - 1 - x for the mirrored vertex (-X, Y, Z) (see docs/synth.md).
  auto M = face.M.clone();
  M[0][1].neg_();
  M[0][2].neg_();
  M[0][3] = float(W - 1) - face.M[0][3];
  M[1][0].neg_();
  f.M = M.contiguous();
  auto L = face.L.clone();
  for (int c = 0; c < 3; ++c)
    for (int k : {3, 4, 7}) L[9 * c + k].neg_();  // SH basis functions odd in x
  f.L = L.contiguous();
  f.pose = {-face.pose[0], face.pose[1], -face.pose[2]};
  f.image = cv::Mat();  // the copy shares the pixels: flip into new buffers
  f.coverage = cv::Mat();
  cv::flip(face.image, f.image, 1);
  cv::flip(face.coverage, f.coverage, 1);
  if (face.occluder[0] > 0) {  // x -> W - 1 - x; an ellipse's angle changes sign
    f.occluder[1] = float(W - 1) - face.occluder[1];
    f.occluder[5] = -face.occluder[5];
  }
  const auto& perm = io::Ibug68FlipPermutation();
  for (int i = 0; i < 68; ++i) {
    f.landmarks[2 * i] = (W - 1) - face.landmarks[2 * perm[i]];
    f.landmarks[2 * i + 1] = face.landmarks[2 * perm[i] + 1];
    f.visible[i] = face.visible[perm[i]];
  }
  return f;
}

Identity IdentityFromFit(const at::Tensor& shape_uv, const at::Tensor& albedo_uv, const at::Tensor& mask) {
  const auto m = mask.to(torch::kFloat).unsqueeze(0);
  Identity id;
  id.shape_uv = (shape_uv.to(torch::kFloat) * m).contiguous();
  id.albedo_uv = (albedo_uv.to(torch::kFloat).clamp(0, 1) * m).contiguous();
  id.eye_closed_albedo_uv = id.albedo_uv;  // unused: expressions are off with --from
  id.mouth_dark = torch::zeros(mask.sizes(), torch::kFloat);
  // The head and neck around the face take the face's median skin colour.
  const auto face = mask.to(torch::kBool);
  for (int c = 0; c < 3; ++c) {
    auto v = id.albedo_uv[c].masked_select(face);
    id.skin[c] = v.numel() ? v.median().item<float>() : 0.5f;
    id.hair[c] = 0.35f * id.skin[c];
  }
  id.hair_volume = 1;
  return id;
}

}  // namespace facebatch::synth
