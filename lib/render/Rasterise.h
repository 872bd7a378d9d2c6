#pragma once
// z-buffer rasterisation of a batch of triangle meshes into per-pixel triangle
// ids (not differentiable; Render.h recomputes barycentrics with torch ops).
// One dispatcher, per-backend files: RasteriseCPU.cpp (TBB), RasteriseCUDA.cpp
// (for now: copies to the CPU and back; a native kernel goes there).
//
// Pixel (row i, column j) is sampled at its centre (x = j, y = i) (common
// image convention). Coverage: edge functions with the top-left fill rule, so a
// pixel centre on an edge shared by two triangles is covered exactly once, and
// zero-area triangles cover nothing. Depth test: the smallest interpolated depth
// wins; on exact ties the lower triangle id wins (deterministic).
// Parallelism: over images x horizontal bands of `band_rows` rows; each task owns
// its band's pixels (no data races).
#include <ATen/Tensor.h>

namespace facebatch::render {

struct RasterOptions {
  int height = 224;
  int width = 224;
  int band_rows = 32;                  ///< rows per parallel task
  double visibility_tolerance = 2.0;   ///< depth slack (depth units = pixels) for vertex visibility
};

struct RasterOutput {
  at::Tensor triangle_id;  ///< [B, H, W] int64, -1 where no triangle covers the pixel centre
  at::Tensor zbuffer;      ///< [B, H, W] float32, +inf where uncovered
  at::Tensor visibility;   ///< [B, N] bool: vertex inside the image and not occluded (depth test
                           ///< against the z-buffer at the up-to-4 nearest pixel centres, with tolerance)
};

/// screen [B, N, 2] float32 (x, y) image coordinates, depth [B, N] float32
/// (larger = farther), triangles [F, 3] int64 (shared by the batch); all
/// contiguous and on one device. Outputs are on that device.
RasterOutput Rasterise(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                       const RasterOptions& options = {});

namespace detail {
RasterOutput RasteriseCPU(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                          const RasterOptions& options);
RasterOutput RasteriseCUDA(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                           const RasterOptions& options);
}  // namespace detail

}  // namespace facebatch::render
