#include "model/SyntheticTemplate.h"

#include <torch/torch.h>

#include <cmath>

#include "render/Topology.h"

namespace facebatch::model {

render::FaceTemplate SyntheticTemplate(int U, int V) {
  render::FaceTemplate t;
  auto rr = ((torch::arange(U, torch::kFloat) + 0.5) / U - 0.5) * 2;  // -1 top .. 1 bottom
  auto cc = ((torch::arange(V, torch::kFloat) + 0.5) / V - 0.5) * 2;  // -1 left .. 1 right
  auto R = rr.view({U, 1}).expand({U, V}), C = cc.view({1, V}).expand({U, V});
  auto e = (R / 0.95).pow(2) + (C / 0.85).pow(2);
  auto mask = render::CleanMask(e <= 1);
  // Half ellipsoid: x = C / 0.85, y = -R * (1.3 / 0.95) (y up), z = depth.
  auto x = C / 0.85, y = -R / 0.95 * 1.3, z = torch::sqrt(torch::clamp(1 - e, 0)) * 0.8;
  auto m = mask.to(torch::kFloat);
  t.mean_shape = torch::stack({x, y, z}) * m * 7.5;  // centimetres, about as wide as the default template
  t.mean_albedo = torch::tensor({0.72f, 0.53f, 0.44f}).view({3, 1, 1}).expand({3, U, V}).clone() * m;
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
  }
  t.topology = render::BuildTopology(mask, t.landmarks68_uv);
  t.topology.regions = render::RegionBoxes(t.landmarks68_uv, U, V);
  t.source = "facebatch synthetic half-ellipsoid template";
  return t;
}

}  // namespace facebatch::model
