#pragma once
// The sRGB transfer function on tensors, and linear renders as 8-bit pictures.
// The convention (linear RGB inside the model, sRGB in files) is in core/Colour.h.
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

namespace facebatch::render {

/// Linear RGB (clamped to [0, 1]) -> sRGB-encoded values in [0, 1]; any shape,
/// differentiable (the derivative at 0 is the linear segment's 12.92).
at::Tensor LinearToSrgb(const at::Tensor& linear);

/// sRGB-encoded values (clamped to [0, 1]) -> linear RGB in [0, 1]; any shape.
at::Tensor SrgbToLinear(const at::Tensor& srgb);

/// Linear RGB [3, H, W] (clamped to [0, 1]) -> 8-bit sRGB BGR picture (OpenCV order).
cv::Mat LinearRgbToSrgbBgr8(const at::Tensor& rgb);

}  // namespace facebatch::render
