#pragma once
// Closed-form camera from landmarks: the first, coarse stage of the fit
// (issue 15), as model-based face fitters do it (pose and camera from the 2D
// landmarks alone before any photometric term).
#include <ATen/Tensor.h>

namespace facebatch::fit {

/// The weak-perspective M [B, 2, 4] (scaled orthographic: the 2x3 part is s
/// times two orthonormal rows, image y down as everywhere) that best maps the
/// model's landmark vertices `points3d` [B, K, 3] onto the image landmarks
/// `points2d` [B, K, 2] (pixels), weighted by `weights` [B, K] (0/1; images with
/// fewer than 4 weighted points keep `fallback` [B, 2, 4]).
/// Eq. 7's least squares without the rotation constraint first (a 2x4 affine
/// camera: two 4x4 normal equations per image), then the nearest scaled
/// orthographic 2x3 (SVD: both singular values replaced by their mean) and the
/// translation re-solved for it. Float32 result on the inputs' device.
at::Tensor EstimateWeakPerspective(const at::Tensor& points3d, const at::Tensor& points2d, const at::Tensor& weights,
                                   const at::Tensor& fallback);

}  // namespace facebatch::fit
