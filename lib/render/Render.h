#pragma once
// Differentiable face image formation (paper section 3.1, eqs. 3-4; DESIGN.md
// "Differentiable rendering"): project (Projection.h), rasterise triangle ids
// (Rasterise.h, not differentiable), then recompute barycentrics with torch ops
// from the projected vertices and interpolate per-vertex colours, so gradients
// reach vertex positions, albedo, lighting and M on any torch device.
//
// Colour model: per-vertex colour = albedo x SH shading of the vertex normal
// (area-weighted, Topology.h) rotated into the view frame by ViewRotation(M);
// pixels interpolate vertex colours with screen-space barycentrics (exact for
// weak perspective). Background pixels are 0 in image and depth.
//
// Torch glue: every entry checks shapes, dtype (floating, all the same), device
// (all the same) and throws facebatch::Error naming the argument. Inputs may be
// non-contiguous; the raw rasteriser gets contiguous float32 copies.
#include <ATen/Tensor.h>

#include "render/Rasterise.h"
#include "render/Topology.h"

namespace facebatch::render {

struct RenderResult {
  at::Tensor image;         ///< [B, 3, H, W] rendered colour (0 on background)
  at::Tensor mask;          ///< [B, 1, H, W] 1 where a triangle covers the pixel centre (same dtype as image)
  at::Tensor depth;         ///< [B, 1, H, W] interpolated depth (pixels, larger = farther), 0 on background
  at::Tensor triangle_id;   ///< [B, H, W] int64, -1 on background
  at::Tensor visibility;    ///< [B, N] bool: vertex visible (inside the image, passes the z-buffer test)
  at::Tensor screen;        ///< [B, N, 2] projected vertices (differentiable)
  at::Tensor vertex_color;  ///< [B, N, 3] albedo x shading (differentiable)
  at::Tensor normals;       ///< [B, N, 3] unit normals in the view frame (differentiable)
};

/// Renders meshes with the shared `triangles` [F, 3] int64 (any device; moved to the inputs' device).
/// shape_vertices [B, N, 3], albedo_vertices [B, N, 3] (linear RGB), M [B, 2, 4], L [B, 27].
RenderResult RenderMesh(const at::Tensor& triangles, const at::Tensor& shape_vertices,
                        const at::Tensor& albedo_vertices, const at::Tensor& M, const at::Tensor& L,
                        int height = 224, int width = 224, const RasterOptions& raster = {});

/// Renders face meshes of `topology` (N = topology.num_vertices()).
RenderResult Render(const FaceTopology& topology, const at::Tensor& shape_vertices,
                    const at::Tensor& albedo_vertices, const at::Tensor& M, const at::Tensor& L, int height = 224,
                    int width = 224);

/// Barycentric interpolation of per-vertex attributes [B, N, C] at the pixels of
/// a rasterisation (triangle_id [B, H, W]) given the projected vertices
/// screen [B, N, 2]: returns [B, C, H, W] (0 on background), differentiable in
/// both `attributes` and `screen`.
at::Tensor InterpolateAttributes(const at::Tensor& triangles, const at::Tensor& triangle_id,
                                 const at::Tensor& screen, const at::Tensor& attributes);

/// The same with torch ops only (the path for non-CPU devices; CPU float/double
/// uses a fused kernel). Exposed for tests.
at::Tensor InterpolateAttributesTorch(const at::Tensor& triangles, const at::Tensor& triangle_id,
                                      const at::Tensor& screen, const at::Tensor& attributes);

struct UnwrapResult {
  at::Tensor vertex_color;  ///< [B, N, 3] image sampled (bilinear) at the projected vertices
  at::Tensor visibility;    ///< [B, N] bool: visible (z-buffer) and facing the camera
  at::Tensor uv_color;      ///< [B, 3, U, V] (topology overload only), 0 outside the mask
  at::Tensor uv_visibility; ///< [B, 1, U, V] float, the mask T of eq. 16 (topology overload only)
};

/// Texture unwrapping: samples `image` [B, 3, H, W] into UV space through the
/// projection of `shape_vertices` [B, N, 3] by M [B, 2, 4] (differentiable in
/// image, vertices and M); visibility from a rasterisation of the same mesh.
UnwrapResult UnwrapTexture(const FaceTopology& topology, const at::Tensor& image, const at::Tensor& shape_vertices,
                           const at::Tensor& M);
UnwrapResult UnwrapTextureMesh(const at::Tensor& triangles, const at::Tensor& image,
                               const at::Tensor& shape_vertices, const at::Tensor& M);

}  // namespace facebatch::render
