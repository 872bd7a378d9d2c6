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

struct TriSetup {
  int row0, row1;  // inclusive pixel-row range, row0 > row1 when culled
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

  // Pass 1: per-triangle row range (culls off-screen, non-finite, zero-area triangles).
  std::vector<TriSetup> setup(static_cast<size_t>(B * F));
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * F, 4096), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t k = r.begin(); k < r.end(); ++k) {
      const int64_t b = k / F, f = k % F;
      const float* p = xy + b * N * 2;
      const int64_t i0 = tri[3 * f], i1 = tri[3 * f + 1], i2 = tri[3 * f + 2];
      const double x0 = p[2 * i0], y0 = p[2 * i0 + 1], x1 = p[2 * i1], y1 = p[2 * i1 + 1], x2 = p[2 * i2],
                   y2 = p[2 * i2 + 1];
      TriSetup s{1, 0};
      const double area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
      if (area != 0 && std::isfinite(area)) {
        const double ymin = std::min({y0, y1, y2}), ymax = std::max({y0, y1, y2});
        const double xmin = std::min({x0, x1, x2}), xmax = std::max({x0, x1, x2});
        if (xmax >= 0 && xmin <= W - 1 && ymax >= 0 && ymin <= H - 1) {
          s.row0 = std::max(0, static_cast<int>(std::ceil(ymin)));
          s.row1 = std::min(H - 1, static_cast<int>(std::floor(ymax)));
        }
      }
      setup[k] = s;
    }
  });

  // Pass 2: rasterise, each task owns rows [r0, r1) of one image.
  const int bands = (H + opt.band_rows - 1) / opt.band_rows;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * bands, 1), [&](const tbb::blocked_range<int64_t>& range) {
    for (int64_t task = range.begin(); task < range.end(); ++task) {
      const int64_t b = task / bands;
      const int r0 = static_cast<int>(task % bands) * opt.band_rows;
      const int r1 = std::min(H, r0 + opt.band_rows) - 1;  // inclusive
      const float* p = xy + b * N * 2;
      const float* d = dep + b * N;
      const TriSetup* st = setup.data() + b * F;
      int64_t* id_img = ids + b * H * W;
      float* z_img = zbuf + b * H * W;
      for (int64_t f = 0; f < F; ++f) {
        const TriSetup s = st[f];
        if (s.row0 > s.row1 || s.row1 < r0 || s.row0 > r1) continue;
        int64_t v[3] = {tri[3 * f], tri[3 * f + 1], tri[3 * f + 2]};
        double X[3], Y[3], Z[3];
        for (int k = 0; k < 3; ++k) {
          X[k] = p[2 * v[k]];
          Y[k] = p[2 * v[k] + 1];
          Z[k] = d[v[k]];
        }
        double area = (X[1] - X[0]) * (Y[2] - Y[0]) - (Y[1] - Y[0]) * (X[2] - X[0]);
        if (area < 0) {  // orient so that the interior has positive edge functions
          std::swap(X[1], X[2]);
          std::swap(Y[1], Y[2]);
          std::swap(Z[1], Z[2]);
          std::swap(v[1], v[2]);
          area = -area;
        }
        // Edge k is opposite vertex k: from vertex (k+1)%3 to (k+2)%3. Each edge
        // function is evaluated from the endpoint with the smaller vertex id so
        // that the two triangles sharing an edge get exactly opposite values.
        double ax[3], ay[3], ex[3], ey[3], sign[3];
        bool owns[3];
        for (int k = 0; k < 3; ++k) {
          const int a = (k + 1) % 3, c = (k + 2) % 3;
          const bool flip = v[a] > v[c];
          const int s0 = flip ? c : a, s1 = flip ? a : c;
          ax[k] = X[s0];
          ay[k] = Y[s0];
          ex[k] = X[s1] - X[s0];
          ey[k] = Y[s1] - Y[s0];
          sign[k] = flip ? -1.0 : 1.0;
          owns[k] = OwnsEdge(X[c] - X[a], Y[c] - Y[a]);
        }
        const double xmin = std::min({X[0], X[1], X[2]}), xmax = std::max({X[0], X[1], X[2]});
        const int c0 = std::max(0, static_cast<int>(std::ceil(xmin)));
        const int c1 = std::min(W - 1, static_cast<int>(std::floor(xmax)));
        const int rr0 = std::max(r0, s.row0), rr1 = std::min(r1, s.row1);
        const double inv_area = 1.0 / area;
        for (int y = rr0; y <= rr1; ++y) {
          for (int x = c0; x <= c1; ++x) {
            double w[3];
            bool inside = true;
            for (int k = 0; k < 3; ++k) {
              w[k] = sign[k] * (ex[k] * (y - ay[k]) - ey[k] * (x - ax[k]));
              if (w[k] < 0 || (w[k] == 0 && !owns[k])) {
                inside = false;
                break;
              }
            }
            if (!inside) continue;
            const float z = static_cast<float>((w[0] * Z[0] + w[1] * Z[1] + w[2] * Z[2]) * inv_area);
            const int64_t pix = static_cast<int64_t>(y) * W + x;
            if (z < z_img[pix]) {
              z_img[pix] = z;
              id_img[pix] = f;
            }
          }
        }
      }
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
