// CPU backend of the rasteriser: TBB over images x row bands (see Rasterise.h).
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "render/Rasterise.h"

namespace facebatch::render::detail {

namespace {

// Pixel centre on an edge a->b belongs to the triangle when the edge is a
// "top" or "left" edge for a triangle whose interior has positive edge
// functions E_ab(p) = (b - a) x (p - a) (x right, y down): left edges go up
// (dy < 0), top edges are horizontal going right (dy == 0, dx > 0).
inline bool OwnsEdge(double dx, double dy) { return dy < 0 || (dy == 0 && dx > 0); }

// Edge functions closer to zero than this are decided by CoversExactly.
constexpr double kTie = 1e-6;

// Exact coverage test with the top-left rule: the triangle is oriented so that
// its interior has positive edge functions, and each edge function is
// evaluated from the endpoint with the smaller vertex id, so the two triangles
// sharing an edge compute exactly opposite values (watertight, no double cover).
bool CoversExactly(int x, int y, const int64_t vin[3], double X0, double Y0, double X1, double Y1, double X2,
                   double Y2) {
  int64_t v[3] = {vin[0], vin[1], vin[2]};
  double X[3] = {X0, X1, X2}, Y[3] = {Y0, Y1, Y2};
  const double area = (X[1] - X[0]) * (Y[2] - Y[0]) - (Y[1] - Y[0]) * (X[2] - X[0]);
  if (area < 0) {
    std::swap(X[1], X[2]);
    std::swap(Y[1], Y[2]);
    std::swap(v[1], v[2]);
  }
  for (int k = 0; k < 3; ++k) {  // edge k: from vertex (k+1)%3 to (k+2)%3
    const int a = (k + 1) % 3, c = (k + 2) % 3;
    const bool flip = v[a] > v[c];
    const int s0 = flip ? c : a, s1 = flip ? a : c;
    double w = (X[s1] - X[s0]) * (y - Y[s0]) - (Y[s1] - Y[s0]) * (x - X[s0]);
    if (flip) w = -w;
    if (w < 0 || (w == 0 && !OwnsEdge(X[c] - X[a], Y[c] - Y[a]))) return false;
  }
  return true;
}

// max(0, ceil(v)) for v <= image size, without a libm call.
inline int CeilClamped(float v) {
  if (!(v > 0)) return 0;
  const int i = static_cast<int>(v);
  return i + (static_cast<float>(i) < v ? 1 : 0);
}

// Integer pixel bounding box of the pixel centres a triangle may cover.
struct TriBox {
  int32_t r0, r1, c0, c1;  // inclusive; culled when r0 > r1
};

}  // namespace

RasterOutput RasteriseCPU(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                          const RasterOptions& opt) {
  const int64_t B = screen.size(0), N = screen.size(1), F = triangles.size(0);
  const int H = opt.height, W = opt.width;
  RasterOutput out;
  out.triangle_id = torch::full({B, H, W}, -1, torch::kLong);
  out.zbuffer = torch::full({B, H, W}, std::numeric_limits<float>::infinity(), torch::kFloat);
  out.visibility = torch::zeros({B, N}, torch::kBool);
  if (B == 0 || N == 0) return out;

  const float* xy = screen.data_ptr<float>();
  const float* dep = depth.data_ptr<float>();
  const int64_t* tri = triangles.data_ptr<int64_t>();
  int64_t* ids = out.triangle_id.data_ptr<int64_t>();
  float* zbuf = out.zbuffer.data_ptr<float>();
  bool* vis = out.visibility.data_ptr<bool>();
  const int band_rows = opt.band_rows;
  const int bands = (H + band_rows - 1) / band_rows;

  // Pass 1 (per image): pixel-centre bounding boxes, culling triangles that
  // contain no pixel centre (most sub-pixel triangles of a dense mesh), lie
  // off-screen, are not finite or have zero area; then bin the survivors into
  // row bands, in increasing triangle order (deterministic depth ties).
  // The band raster of pass 2 (rows [r0, r1] of image b, triangles `list`).
  auto raster_band = [&](int64_t b, int k, const TriBox* box, const int32_t* list, int64_t count) {
    {
      const int r0 = k * band_rows;
      const int r1 = std::min(H, r0 + band_rows) - 1;  // inclusive
      const float* p = xy + b * N * 2;
      const float* d = dep + b * N;
      int64_t* id_img = ids + b * H * W;
      float* z_img = zbuf + b * H * W;
      for (int64_t li = 0; li < count; ++li) {
        const int32_t f = list[li];
        const TriBox s = box[f];
        const int64_t v[3] = {tri[3 * f], tri[3 * f + 1], tri[3 * f + 2]};
        const double X0 = p[2 * v[0]], Y0 = p[2 * v[0] + 1], X1 = p[2 * v[1]], Y1 = p[2 * v[1] + 1],
                     X2 = p[2 * v[2]], Y2 = p[2 * v[2] + 1];
        const double area = (X1 - X0) * (Y2 - Y0) - (Y1 - Y0) * (X2 - X0);
        if (area == 0) continue;
        const double sgn = area > 0 ? 1.0 : -1.0;
        const double inv_area = 1.0 / area;
        const double dz0 = d[v[0]], dz1 = d[v[1]], dz2 = d[v[2]];
        const int rr0 = std::max(r0, s.r0), rr1 = std::min(r1, s.r1);
        for (int y = rr0; y <= rr1; ++y) {
          for (int x = s.c0; x <= s.c1; ++x) {
            // Barycentric numerators (edge functions); exact products of floats in
            // double, so only values within kTie of zero need the exact tie rule.
            double w0 = (X1 - x) * (Y2 - y) - (Y1 - y) * (X2 - x);
            double w1 = (X2 - x) * (Y0 - y) - (Y2 - y) * (X0 - x);
            double w2 = (X0 - x) * (Y1 - y) - (Y0 - y) * (X1 - x);
            const double a0 = sgn * w0, a1 = sgn * w1, a2 = sgn * w2;
            // Branch-free in the common cases (coverage of sub-pixel triangles is
            // unpredictable); the exact tie rule is rare and predictable.
            bool in = (a0 > kTie) & (a1 > kTie) & (a2 > kTie);
            const bool out = (a0 < -kTie) | (a1 < -kTie) | (a2 < -kTie);
            if (!in && !out) in = CoversExactly(x, y, v, X0, Y0, X1, Y1, X2, Y2);
            const float z = static_cast<float>((w0 * dz0 + w1 * dz1 + w2 * dz2) * inv_area);
            const int64_t pix = static_cast<int64_t>(y) * W + x;
            const bool win = in & (z < z_img[pix]);
            z_img[pix] = win ? z : z_img[pix];
            id_img[pix] = win ? static_cast<int64_t>(f) : id_img[pix];
          }
        }
      }
    }
  };

  // Per image (parallel over images): pass 1 then pass 2 over its row bands
  // (nested parallel), so the image's triangle data stays in cache.
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& range) {
    std::vector<TriBox> box(static_cast<size_t>(F));
    std::vector<int64_t> offset(bands + 1);
    std::vector<int32_t> list;
    for (int64_t b = range.begin(); b < range.end(); ++b) {
      const float* p = xy + b * N * 2;
      std::fill(offset.begin(), offset.end(), 0);
      for (int64_t f = 0; f < F; ++f) {
        const int64_t i0 = tri[3 * f], i1 = tri[3 * f + 1], i2 = tri[3 * f + 2];
        const float x0 = p[2 * i0], y0 = p[2 * i0 + 1], x1 = p[2 * i1], y1 = p[2 * i1 + 1], x2 = p[2 * i2],
                    y2 = p[2 * i2 + 1];
        TriBox t{1, 0, 1, 0};
        const float xmin = std::min(x0, std::min(x1, x2)), xmax = std::max(x0, std::max(x1, x2));
        const float ymin = std::min(y0, std::min(y1, y2)), ymax = std::max(y0, std::max(y1, y2));
        if (xmax >= 0 && xmin <= W - 1 && ymax >= 0 && ymin <= H - 1) {  // false for NaN too
          t.c0 = CeilClamped(xmin);
          t.c1 = static_cast<int>(std::min(xmax, static_cast<float>(W - 1)));  // floor of a value >= 0
          t.r0 = CeilClamped(ymin);
          t.r1 = static_cast<int>(std::min(ymax, static_cast<float>(H - 1)));
          if (t.c0 > t.c1) t.r0 = 1, t.r1 = 0;
        }
        box[f] = t;
        if (t.r0 <= t.r1)
          for (int k = t.r0 / band_rows; k <= t.r1 / band_rows; ++k) ++offset[k + 1];
      }
      for (int k = 0; k < bands; ++k) offset[k + 1] += offset[k];
      list.resize(static_cast<size_t>(offset[bands]));
      std::vector<int64_t> fill(offset.begin(), offset.end() - 1);
      for (int64_t f = 0; f < F; ++f) {
        const TriBox t = box[f];
        if (t.r0 <= t.r1)
          for (int k = t.r0 / band_rows; k <= t.r1 / band_rows; ++k) list[fill[k]++] = static_cast<int32_t>(f);
      }
      tbb::parallel_for(tbb::blocked_range<int>(0, bands, 1), [&](const tbb::blocked_range<int>& kr) {
        for (int k = kr.begin(); k < kr.end(); ++k)
          raster_band(b, k, box.data(), list.data() + offset[k], offset[k + 1] - offset[k]);
      });
    }
  });

  // Pass 3: vertex visibility against the z-buffer.
  const float tol = static_cast<float>(opt.visibility_tolerance);
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * N, 8192), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t k = r.begin(); k < r.end(); ++k) {
      const int64_t b = k / N;
      const float x = xy[2 * k], y = xy[2 * k + 1], z = dep[k];
      if (!(x >= -0.5f && x <= W - 0.5f && y >= -0.5f && y <= H - 0.5f) || !std::isfinite(z)) continue;
      const int xf = static_cast<int>(std::floor(x)), yf = static_cast<int>(std::floor(y));
      const float* z_img = zbuf + b * H * W;
      bool visible = false;
      for (int dy = 0; dy < 2 && !visible; ++dy)
        for (int dx = 0; dx < 2 && !visible; ++dx) {
          const int px = xf + dx, py = yf + dy;
          if (px < 0 || px >= W || py < 0 || py >= H) continue;
          const float zb = z_img[static_cast<int64_t>(py) * W + px];
          if (std::isfinite(zb) && z <= zb + tol) visible = true;
        }
      vis[k] = visible;
    }
  });
  return out;
}

}  // namespace facebatch::render::detail
