#pragma once
// 8-bit RGB PNG previews (docs/images, render-template, mesh textures) through OpenCV.
#include <ATen/Tensor.h>

#include <string>

namespace facebatch::render {

/// Writes `image` [3, H, W] float in [0, 1] (linear RGB, converted to sRGB when
/// `srgb`) as an 8-bit RGB PNG. Throws InputError naming the path on failure.
void WritePng(const std::string& path, const at::Tensor& image, bool srgb = true);

}  // namespace facebatch::render
