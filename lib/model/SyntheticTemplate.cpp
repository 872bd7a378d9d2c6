#include "model/SyntheticTemplate.h"

#include <torch/torch.h>

#include <cmath>

#include "model/ModelConfig.h"

namespace facebatch::model {

render::FaceTopology GridTopology(const at::Tensor& mask_in) {
  auto mask = mask_in.to(torch::kCPU).to(torch::kBool).contiguous();
  const int64_t U = mask.size(0), V = mask.size(1);
  render::FaceTopology t;
  t.uv_rows = static_cast<int>(U), t.uv_cols = static_cast<int>(V);
  t.mask = mask;
  auto flat = mask.flatten();
  t.pixel_of_vertex = torch::nonzero(flat).flatten();
  const int64_t N = t.pixel_of_vertex.size(0);
  auto vop = torch::full({U * V}, -1, torch::kLong);
  vop.index_put_({t.pixel_of_vertex}, torch::arange(N, torch::kLong));
  t.vertex_of_pixel = vop.view({U, V});
  auto r = torch::div(t.pixel_of_vertex, V, "floor").to(torch::kFloat), c = (t.pixel_of_vertex % V).to(torch::kFloat);
  t.vertex_uv = torch::stack({(c + 0.5) / V, 1 - (r + 0.5) / U}, 1);
  // Triangles: quad a=(r,c) b=(r,c+1) c=(r+1,c) d=(r+1,c+1); with y up these are (a,c,b), (b,c,d), CCW from +z.
  auto a = t.vertex_of_pixel.slice(0, 0, U - 1).slice(1, 0, V - 1);
  auto b = t.vertex_of_pixel.slice(0, 0, U - 1).slice(1, 1, V);
  auto cc = t.vertex_of_pixel.slice(0, 1, U).slice(1, 0, V - 1);
  auto d = t.vertex_of_pixel.slice(0, 1, U).slice(1, 1, V);
  auto full = (a >= 0) & (b >= 0) & (cc >= 0) & (d >= 0);
  auto t1 = torch::stack({a.masked_select(full), cc.masked_select(full), b.masked_select(full)}, 1);
  auto t2 = torch::stack({b.masked_select(full), cc.masked_select(full), d.masked_select(full)}, 1);
  t.triangles = torch::cat({t1, t2}, 0);
  auto mirrored = t.vertex_of_pixel.flip({1}).flatten();
  t.flip = mirrored.index_select(0, t.pixel_of_vertex);
  t.landmarks68 = torch::full({68}, -1, torch::kLong);
  return t;
}

render::FaceTemplate SyntheticTemplate(int U, int V) {
  render::FaceTemplate t;
  auto rr = ((torch::arange(U, torch::kFloat) + 0.5) / U - 0.5) * 2;  // -1 top .. 1 bottom
  auto cc = ((torch::arange(V, torch::kFloat) + 0.5) / V - 0.5) * 2;  // -1 left .. 1 right
  auto R = rr.view({U, 1}).expand({U, V}), C = cc.view({1, V}).expand({U, V});
  auto e = (R / 0.95).pow(2) + (C / 0.85).pow(2);
  auto mask = e <= 1;
  t.topology = GridTopology(mask);
  // Half ellipsoid: x = C / 0.85, y = -R * (1.3 / 0.95) (y up), z = depth.
  auto x = C / 0.85, y = -R / 0.95 * 1.3, z = torch::sqrt(torch::clamp(1 - e, 0)) * 0.8;
  auto m = mask.to(torch::kFloat);
  t.mean_shape = torch::stack({x, y, z}) * m;
  t.mean_albedo = torch::tensor({0.72f, 0.53f, 0.44f}).view({3, 1, 1}).expand({3, U, V}).clone() * m;
  t.topology.regions = DefaultRegions(U, V);
  // 68 landmarks (iBUG order) at rough positions, (row, col) as fractions of U, V.
  std::vector<std::array<double, 2>> lm;
  for (int i = 0; i < 17; ++i)  // jaw: the lower half of an ellipse, left to right
    lm.push_back({0.45 + 0.40 * std::sin(M_PI * i / 16.0), 0.5 - 0.40 * std::cos(M_PI * i / 16.0)});
  for (int i = 0; i < 5; ++i) lm.push_back({0.27, 0.20 + 0.06 * i});   // left brow
  for (int i = 0; i < 5; ++i) lm.push_back({0.27, 0.56 + 0.06 * i});   // right brow
  for (int i = 0; i < 4; ++i) lm.push_back({0.40 + 0.06 * i, 0.5});    // nose bridge
  for (int i = 0; i < 5; ++i) lm.push_back({0.63, 0.42 + 0.04 * i});   // nostrils
  for (double cx : {0.32, 0.68})                                         // eyes
    for (int i = 0; i < 6; ++i) {
      double a = M_PI * i / 3.0;
      lm.push_back({0.40 - 0.025 * std::sin(a), cx - 0.07 * std::cos(a)});
    }
  for (int i = 0; i < 12; ++i) {  // outer lip
    double a = 2 * M_PI * i / 12.0;
    lm.push_back({0.76 - 0.05 * std::sin(a), 0.5 - 0.15 * std::cos(a)});
  }
  for (int i = 0; i < 8; ++i) {  // inner lip
    double a = 2 * M_PI * i / 8.0;
    lm.push_back({0.76 - 0.02 * std::sin(a), 0.5 - 0.11 * std::cos(a)});
  }
  t.landmarks68_uv = torch::zeros({68, 2});
  for (int i = 0; i < 68; ++i) {
    int r = std::clamp(static_cast<int>(std::lround(lm[i][0] * U - 0.5)), 0, U - 1);
    int c = std::clamp(static_cast<int>(std::lround(lm[i][1] * V - 0.5)), 0, V - 1);
    // Move inwards until inside the mask (the jaw sits on the boundary).
    while (!mask[r][c].item<bool>()) {
      r += r < U / 2 ? 1 : (r > U / 2 ? -1 : 0);
      c += c < V / 2 ? 1 : (c > V / 2 ? -1 : 0);
    }
    t.landmarks68_uv[i][0] = r, t.landmarks68_uv[i][1] = c;
    t.topology.landmarks68[i] = t.topology.vertex_of_pixel[r][c];
  }
  t.source = "facebatch synthetic half-ellipsoid template";
  return t;
}

}  // namespace facebatch::model
