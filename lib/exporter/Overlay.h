#pragma once
// `facebatch export overlay`: a quick-QA picture per image, three panels side by
// side. Left: the original image (/images/source). Middle: the same image with
// the fitted face re-rendered (render::Render of the stored shape and albedo with
// M and L, eq. 3, into the model's S x S crop) and warped back into the original
// with /images/crop_to_original (bilinear, alpha = the render's coverage), nothing
// drawn over it, so the render can be judged against the left panel. Right: the
// middle panel with the mesh wireframe (every k-th UV row and column of the grid,
// visible vertices only) and the 68 landmark vertices (filled green: visible;
// hollow red: occluded). The panels are scaled down together when the original's
// longer side exceeds `max_size` pixels; the picture is then 3 W' x H'.
#include <ATen/Tensor.h>

#include <opencv2/core.hpp>

#include "render/Topology.h"

namespace facebatch::exporter {

struct OverlayInput {
  cv::Mat original;             ///< 8-bit BGR original image
  at::Tensor shape_vertices;    ///< [N, 3] model space
  at::Tensor albedo_vertices;   ///< [N, 3] linear RGB
  at::Tensor M;                 ///< [2, 4] crop pixels
  at::Tensor L;                 ///< [27]
  at::Tensor crop_to_original;  ///< [2, 3] float64
  int image_size = 224;         ///< S (root attribute image_size)
};

/// The 8-bit BGR overlay picture (see above).
cv::Mat MakeOverlay(const render::FaceTopology& topology, const OverlayInput& in, int max_size = 1024);

/// Scale applied to the original by MakeOverlay (1 when it fits in max_size).
double OverlayScale(int width, int height, int max_size);

}  // namespace facebatch::exporter
