#pragma once
// Second-order spherical-harmonics lighting (paper section 3.1, [32]).
// L is [B, 27] = 9 coefficients per channel laid out [R0..R8, G0..G8, B0..B8].
// Basis (real SH, standard constants, normal n = (x, y, z) in the VIEW frame of
// Projection.h: x right, y up, z towards the viewer), in this order:
//   Y0 = 0.282095, Y1 = 0.488603 y, Y2 = 0.488603 z, Y3 = 0.488603 x,
//   Y4 = 1.092548 xy, Y5 = 1.092548 yz, Y6 = 0.315392 (3z^2 - 1),
//   Y7 = 1.092548 xz, Y8 = 0.546274 (x^2 - y^2).
// Shading of channel c = sum_k L[9c + k] Y_k(n); colour = albedo x shading.
// So a uniform white light of intensity 1 is L[9c] = 1 / 0.282095 = 3.5449.
#include <ATen/Tensor.h>

namespace facebatch::render {

constexpr double kSHConstant0 = 0.282095;

/// SH basis of unit normals [..., 3] -> [..., 9].
at::Tensor SHBasis(const at::Tensor& normals);
/// Per-channel shading of unit normals [B, N, 3] (view frame) under L [B, 27] -> [B, N, 3].
at::Tensor SHShading(const at::Tensor& normals, const at::Tensor& L);
/// The same with torch ops only (non-CPU devices; CPU float/double uses a fused kernel).
at::Tensor SHShadingTorch(const at::Tensor& normals, const at::Tensor& L);
/// L [B, 27] for ambient `a` plus a directional term `d` along the unit view-frame
/// direction `dir` (projected onto bands 0 and 1), same for all channels times `rgb`.
at::Tensor SimpleLighting(int64_t batch, double ambient, double directional, double dir_x, double dir_y,
                          double dir_z, double r = 1, double g = 1, double b = 1);

}  // namespace facebatch::render
