// The default face template: MediaPipe's canonical face rasterised into UV space.
#include "render/Template.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/Error.h"

namespace facebatch::render {

TemplateMesh ParseTemplateMesh(const std::string& text, const std::string& name) {
  TemplateMesh mesh;
  std::istringstream in(text);
  std::string line;
  bool versioned = false, have_landmarks = false;
  int line_no = 0;
  auto fail = [&](const std::string& what) {
    throw InputError(name, "line " + std::to_string(line_no) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++line_no;
    std::istringstream ls(line);
    std::string tag;
    if (!(ls >> tag)) continue;
    if (tag == "#") {
      std::string key;
      ls >> key;
      if (key == "facebatch-template") {
        int version = 0;
        ls >> version;
        if (version != 1) fail("unsupported facebatch-template version " + std::to_string(version) + " (expected 1)");
        versioned = true;
      } else if (key == "landmarks68") {
        for (int i = 0; i < 68; ++i)
          if (!(ls >> mesh.landmarks68[i])) fail("landmarks68 needs 68 vertex ids");
        have_landmarks = true;
      } else if (key == "mirror") {
        int j;
        while (ls >> j) mesh.mirror.push_back(j);
      }
    } else if (tag == "v") {
      std::array<float, 3> p{};
      if (!(ls >> p[0] >> p[1] >> p[2])) fail("bad vertex");
      mesh.positions.push_back(p);
    } else if (tag == "vt") {
      std::array<float, 2> t{};
      if (!(ls >> t[0] >> t[1])) fail("bad texture coordinate");
      mesh.uvs.push_back(t);
    } else if (tag == "f") {
      std::array<int, 3> f{};
      for (int i = 0; i < 3; ++i) {
        std::string tok;
        if (!(ls >> tok)) fail("faces must be triangles");
        f[i] = std::atoi(tok.c_str()) - 1;
        auto slash = tok.find('/');
        if (slash != std::string::npos && std::atoi(tok.c_str() + slash + 1) - 1 != f[i])
          fail("texture index must equal vertex index");
      }
      std::string extra;
      if (ls >> extra) fail("faces must be triangles");
      mesh.triangles.push_back(f);
    }
  }
  if (!versioned) throw InputError(name, "not a facebatch template (missing '# facebatch-template 1')");
  if (!have_landmarks) throw InputError(name, "missing '# landmarks68' line");
  const int n = static_cast<int>(mesh.positions.size());
  if (n == 0 || static_cast<int>(mesh.uvs.size()) != n)
    throw InputError(name, "needs one 'vt' per 'v' (" + std::to_string(n) + " v, " + std::to_string(mesh.uvs.size()) + " vt)");
  for (const auto& f : mesh.triangles)
    for (int i : f)
      if (i < 0 || i >= n) throw InputError(name, "face index out of range");
  for (int i : mesh.landmarks68)
    if (i < 0 || i >= n) throw InputError(name, "landmark index out of range");
  if (!mesh.mirror.empty() && static_cast<int>(mesh.mirror.size()) != n)
    throw InputError(name, "mirror line needs one entry per vertex");
  return mesh;
}

TemplateMesh LoadTemplateMesh(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw InputError(path, "cannot open template");
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseTemplateMesh(ss.str(), path);
}

const TemplateMesh& CanonicalFaceMesh() {
  static const TemplateMesh mesh = ParseTemplateMesh(CanonicalFaceObjText(), "samples/template/canonical_face.obj");
  return mesh;
}

namespace {

// Even-odd point-in-polygon test; polygon given as (row, col) points.
bool InPolygon(const std::vector<std::array<double, 2>>& poly, double r, double c) {
  bool in = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const double ri = poly[i][0], ci = poly[i][1], rj = poly[j][0], cj = poly[j][1];
    if ((ri > r) != (rj > r) && c < (cj - ci) * (r - ri) / (rj - ri) + ci) in = !in;
  }
  return in;
}

double SegmentDistance(double r, double c, const std::array<double, 2>& a, const std::array<double, 2>& b) {
  const double dr = b[0] - a[0], dc = b[1] - a[1];
  const double len2 = dr * dr + dc * dc;
  double t = len2 > 0 ? ((r - a[0]) * dr + (c - a[1]) * dc) / len2 : 0.0;
  t = std::clamp(t, 0.0, 1.0);
  const double er = a[0] + t * dr - r, ec = a[1] + t * dc - c;
  return std::sqrt(er * er + ec * ec);
}

// Separable Gaussian blur of a [U, V] float map.
at::Tensor Blur(const at::Tensor& map, double sigma) {
  const int radius = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  auto x = torch::arange(-radius, radius + 1, torch::kFloat);
  auto k = torch::exp(-(x * x) / (2 * sigma * sigma));
  k = k / k.sum();
  auto img = map.view({1, 1, map.size(0), map.size(1)});
  img = torch::conv2d(torch::replication_pad2d(img, {0, 0, radius, radius}), k.view({1, 1, -1, 1}));
  img = torch::conv2d(torch::replication_pad2d(img, {radius, radius, 0, 0}), k.view({1, 1, 1, -1}));
  return img.view({map.size(0), map.size(1)});
}

// Linear-RGB mean albedo of our design: skin with redder cheeks and lips,
// darker brows and eye openings, all blended smoothly (Gaussian-blurred weights).
at::Tensor DesignAlbedo(const at::Tensor& lm_uv, const at::Tensor& mask, int U, int V) {
  auto lm = lm_uv.to(at::kDouble).contiguous();
  auto a = lm.accessor<double, 2>();
  auto pts = [&](int first, int last) {
    std::vector<std::array<double, 2>> p;
    for (int i = first; i <= last; ++i) p.push_back({a[i][0], a[i][1]});
    return p;
  };
  const auto lips = pts(48, 59), eye_l = pts(36, 41), eye_r = pts(42, 47);
  const auto brow_l = pts(17, 21), brow_r = pts(22, 26);
  const double brow_half_width = 0.012 * V + 0.4;
  // Cheek centres: between the eye bottom and the mouth corner, outwards.
  const std::array<double, 2> cheek_l{0.5 * (a[41][0] + a[48][0]), 0.5 * (a[36][1] + a[48][1]) - 0.03 * V};
  const std::array<double, 2> cheek_r{0.5 * (a[46][0] + a[54][0]), 0.5 * (a[45][1] + a[54][1]) + 0.03 * V};
  const double cheek_radius = 0.09 * V;
  auto w_lip = torch::zeros({U, V}), w_eye = torch::zeros({U, V}), w_brow = torch::zeros({U, V}),
       w_cheek = torch::zeros({U, V});
  auto wl = w_lip.accessor<float, 2>(), we = w_eye.accessor<float, 2>(), wb = w_brow.accessor<float, 2>(),
       wc = w_cheek.accessor<float, 2>();
  for (int r = 0; r < U; ++r)
    for (int c = 0; c < V; ++c) {
      if (InPolygon(lips, r, c)) wl[r][c] = 1;
      if (InPolygon(eye_l, r, c) || InPolygon(eye_r, r, c)) we[r][c] = 1;
      double db = 1e30;
      for (size_t i = 0; i + 1 < brow_l.size(); ++i) {
        db = std::min(db, SegmentDistance(r, c, brow_l[i], brow_l[i + 1]));
        db = std::min(db, SegmentDistance(r, c, brow_r[i], brow_r[i + 1]));
      }
      if (db < brow_half_width) wb[r][c] = 1;
      for (const auto& ch : {cheek_l, cheek_r}) {
        const double d = std::hypot(r - ch[0], c - ch[1]) / cheek_radius;
        wc[r][c] = std::max(wc[r][c], static_cast<float>(std::exp(-d * d)));
      }
    }
  const double sigma = std::max(0.6, 0.006 * V);
  w_lip = Blur(w_lip, sigma);
  w_eye = Blur(w_eye, sigma);
  w_brow = Blur(w_brow, sigma);
  // Linear RGB: skin ~ sRGB (215, 165, 135); cheek blush; lips; brows; eye openings.
  auto col = [](double r, double g, double b) { return torch::tensor({r, g, b}, torch::kFloat).view({3, 1, 1}); };
  auto skin = col(0.68, 0.38, 0.25), cheek = col(0.70, 0.32, 0.22), lip = col(0.46, 0.14, 0.12),
       brow = col(0.13, 0.075, 0.045), eye = col(0.22, 0.15, 0.12);
  auto albedo = skin + 0.5 * w_cheek.unsqueeze(0) * (cheek - skin);
  albedo = albedo + w_lip.unsqueeze(0) * (lip - albedo);
  albedo = albedo + 0.85 * w_brow.unsqueeze(0) * (brow - albedo);
  albedo = albedo + 0.8 * w_eye.unsqueeze(0) * (eye - albedo);
  return (albedo * mask.unsqueeze(0).to(torch::kFloat)).clamp(0, 1).contiguous();
}

}  // namespace

FaceTemplate TemplateFromMesh(const TemplateMesh& mesh, int U, int V, const std::string& source) {
  if (U < 8 || V < 8) throw UsageError("template: UV size must be at least 8 x 8 (got " + std::to_string(U) + " x " +
                                       std::to_string(V) + ")");
  auto shape = torch::zeros({3, U, V});
  auto covered = torch::zeros({U, V}, torch::kBool);
  auto sa = shape.accessor<float, 3>();
  auto ca = covered.accessor<bool, 2>();
  // UV (v up) -> pixel (col, row) with the centre-of-pixel origin.
  auto px = [&](int k) {
    return std::array<double, 2>{mesh.uvs[k][0] * V - 0.5, (1.0 - mesh.uvs[k][1]) * U - 0.5};
  };
  for (const auto& t : mesh.triangles) {
    const auto p0 = px(t[0]), p1 = px(t[1]), p2 = px(t[2]);
    const double area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0]);
    if (std::abs(area) < 1e-12) continue;
    const int c0 = std::max(0, static_cast<int>(std::floor(std::min({p0[0], p1[0], p2[0]}))));
    const int c1 = std::min(V - 1, static_cast<int>(std::ceil(std::max({p0[0], p1[0], p2[0]}))));
    const int r0 = std::max(0, static_cast<int>(std::floor(std::min({p0[1], p1[1], p2[1]}))));
    const int r1 = std::min(U - 1, static_cast<int>(std::ceil(std::max({p0[1], p1[1], p2[1]}))));
    for (int r = r0; r <= r1; ++r)
      for (int c = c0; c <= c1; ++c) {
        if (ca[r][c]) continue;
        const double w0 = ((p1[0] - c) * (p2[1] - r) - (p1[1] - r) * (p2[0] - c)) / area;
        const double w1 = ((p2[0] - c) * (p0[1] - r) - (p2[1] - r) * (p0[0] - c)) / area;
        const double w2 = 1.0 - w0 - w1;
        const double eps = -1e-9;
        if (w0 < eps || w1 < eps || w2 < eps) continue;
        ca[r][c] = true;
        for (int d = 0; d < 3; ++d)
          sa[d][r][c] = static_cast<float>(w0 * mesh.positions[t[0]][d] + w1 * mesh.positions[t[1]][d] +
                                           w2 * mesh.positions[t[2]][d]);
      }
  }
  FaceTemplate out;
  out.source = source;
  // Measure, then enforce, left-right symmetry (eqs. 8 and 16 flip columns).
  auto flipped_mask = covered.flip({1});
  const double masked = covered.sum().item<double>();
  out.raw_mask_asymmetry = masked > 0 ? (covered & ~flipped_mask).sum().item<double>() / masked : 0.0;
  auto sign = torch::tensor({-1.0f, 1.0f, 1.0f}).view({3, 1, 1});
  auto mirrored = shape.flip({2}) * sign;
  auto both = covered & flipped_mask;
  out.raw_shape_asymmetry =
      both.any().item<bool>() ? ((shape - mirrored).abs().amax(0).masked_select(both)).max().item<double>() : 0.0;
  auto mask = CleanMask(both);
  auto mf = mask.to(torch::kFloat);
  shape = 0.5 * (shape + mirrored) * mf.unsqueeze(0);
  // The source has only 898 triangles: the piecewise-linear map shades with
  // visible facets. Smooth it with a masked (normalised) Gaussian of sigma =
  // 1% of V, which keeps the mask and the symmetry.
  const double sigma = std::max(0.5, 0.01 * V);
  auto weight = Blur(mf, sigma).clamp_min(1e-6);
  std::vector<at::Tensor> ch;
  for (int d = 0; d < 3; ++d) ch.push_back(Blur(shape[d], sigma) / weight);
  shape = torch::stack(ch, 0) * mf.unsqueeze(0);
  shape = 0.5 * (shape + shape.flip({2}) * sign) * mf.unsqueeze(0);

  out.landmarks68_uv = torch::zeros({68, 2});
  auto la = out.landmarks68_uv.accessor<float, 2>();
  for (int i = 0; i < 68; ++i) {
    const auto p = px(mesh.landmarks68[i]);
    la[i][0] = static_cast<float>(p[1]);
    la[i][1] = static_cast<float>(p[0]);
  }
  out.topology = BuildTopology(mask, out.landmarks68_uv);
  out.mean_shape = shape.contiguous();
  out.mean_albedo = DesignAlbedo(out.landmarks68_uv, mask, U, V);
  return out;
}

FaceTemplate DefaultTemplate(int uv_rows, int uv_cols) {
  return TemplateFromMesh(CanonicalFaceMesh(), uv_rows, uv_cols,
                          "mediapipe canonical_face_model via @mediapipe/face_mesh@0.4.1657299874 (Apache-2.0); "
                          "VTX68 from @vladmandic/human@3.3.6 (MIT)");
}

}  // namespace facebatch::render
