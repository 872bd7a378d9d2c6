#pragma once
// Internal autograd kernels of the render module with fast CPU paths (TBB
// loops) and torch-op fallbacks on other devices. ATen's index_select /
// index_add on [R, C] tensors cost ~50-100 ns per row on the CPU, which
// dominated rendering of paper-size meshes.
#include <ATen/Tensor.h>

namespace facebatch::render::kernels {

/// out[k] = src[idx[k]]: src [R, C], idx [K] int64 -> [K, C]. Differentiable in src.
at::Tensor GatherRows(const at::Tensor& src, const at::Tensor& idx);
/// Same as GatherRows, not differentiable, any dtype (e.g. int64 triangle rows).
at::Tensor TakeRows(const at::Tensor& src, const at::Tensor& idx);
/// out = zeros(rows, C); out[idx[k]] = values[k] (idx distinct): values [K, C] -> [rows, C].
/// Differentiable in values.
at::Tensor PutRows(const at::Tensor& values, const at::Tensor& idx, int64_t rows);
/// Unnormalised area-weighted vertex normals: sum over the faces of each vertex
/// of (v1 - v0) x (v2 - v0). vertices [B, N, 3], triangles [F, 3] int64 -> [B, N, 3].
/// Differentiable in vertices.
at::Tensor VertexNormalSum(const at::Tensor& vertices, const at::Tensor& triangles);

/// Fused barycentric interpolation on the CPU (float/double): for every pixel
/// with triangle_id >= 0, barycentrics of the pixel centre w.r.t. the projected
/// triangle (screen [B, N, 2]) weight the attributes [B, N, C] of its vertices.
/// Returns [B, C, H, W] (0 on background); differentiable in screen and
/// attributes. Returns an undefined tensor when the inputs are not on the CPU.
at::Tensor InterpolateCPU(const at::Tensor& triangles, const at::Tensor& triangle_id, const at::Tensor& screen,
                          const at::Tensor& attributes);

/// Fused SH shading on the CPU (float/double): normals [B, N, 3], L [B, 27] ->
/// [B, N, 3] (Lighting.h basis and layout); differentiable in both. Returns
/// an undefined tensor when the inputs are not on the CPU.
at::Tensor SHShadingCPU(const at::Tensor& normals, const at::Tensor& L);

}  // namespace facebatch::render::kernels
