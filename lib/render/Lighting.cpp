// Second-order SH lighting (see Lighting.h).
#include "render/Lighting.h"

#include <torch/torch.h>

#include <cmath>

#include "core/Error.h"
#include "render/Kernels.h"

namespace facebatch::render {

at::Tensor SHBasis(const at::Tensor& n) {
  if (!n.defined() || n.size(-1) != 3) throw Error("render::SHBasis: normals must be [..., 3]");
  auto x = n.select(-1, 0), y = n.select(-1, 1), z = n.select(-1, 2);
  const double c1 = 0.488603, c2 = 1.092548, c3 = 0.315392, c4 = 0.546274;
  return torch::stack({torch::full_like(x, kSHConstant0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                       c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)},
                      -1);
}

at::Tensor SHShading(const at::Tensor& normals, const at::Tensor& L) {
  if (!normals.defined() || normals.dim() != 3 || normals.size(2) != 3)
    throw Error("render::SHShading: normals must be [B, N, 3]");
  if (!L.defined() || L.dim() != 2 || L.size(1) != 27 || L.size(0) != normals.size(0))
    throw Error("render::SHShading: L must be [B, 27] with the B of the normals");
  if (auto fused = kernels::SHShadingCPU(normals, L); fused.defined()) return fused;
  return SHShadingTorch(normals, L);
}

at::Tensor SHShadingTorch(const at::Tensor& normals, const at::Tensor& L) {
  auto Y = SHBasis(normals);                       // [B, N, 9]
  auto Lc = L.view({L.size(0), 3, 9}).transpose(1, 2);  // [B, 9, 3]
  return torch::matmul(Y, Lc);
}

at::Tensor SimpleLighting(int64_t batch, double ambient, double directional, double dx, double dy, double dz,
                          double r, double g, double b) {
  const double len = std::sqrt(dx * dx + dy * dy + dz * dz);
  if (len == 0) throw Error("render::SimpleLighting: zero direction");
  dx /= len, dy /= len, dz /= len;
  // shading(n) = ambient + directional * (n . dir) on bands 0 and 1:
  // Y0 coefficient ambient / c0, Y1..Y3 coefficients directional * dir / c1.
  const double c0 = kSHConstant0, c1 = 0.488603;
  std::vector<double> one(9, 0.0);
  one[0] = ambient / c0;
  one[1] = directional * dy / c1;
  one[2] = directional * dz / c1;
  one[3] = directional * dx / c1;
  std::vector<double> all;
  for (double w : {r, g, b})
    for (double v : one) all.push_back(w * v);
  auto L = torch::tensor(all, torch::kFloat).view({1, 27});
  return L.expand({batch, 27}).contiguous();
}

}  // namespace facebatch::render
