#include "render/Colour.h"

#include <torch/torch.h>

namespace facebatch::render {

at::Tensor LinearToSrgb(const at::Tensor& linear) {
  const auto v = linear.clamp(0, 1);
  // clamp_min keeps pow's gradient finite at 0 (that branch is not taken there).
  return torch::where(v <= 0.0031308, v * 12.92, 1.055 * v.clamp_min(0.0031308).pow(1 / 2.4) - 0.055);
}

at::Tensor SrgbToLinear(const at::Tensor& srgb) {
  const auto v = srgb.clamp(0, 1);
  return torch::where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055).pow(2.4));
}

cv::Mat LinearRgbToSrgbBgr8(const at::Tensor& rgb) {
  auto srgb = LinearToSrgb(rgb.detach().to(torch::kCPU, torch::kFloat));
  auto bgr = (srgb.flip(0).permute({1, 2, 0}) * 255 + 0.5).clamp(0, 255).to(torch::kByte).contiguous();
  return cv::Mat(static_cast<int>(bgr.size(0)), static_cast<int>(bgr.size(1)), CV_8UC3, bgr.data_ptr<uint8_t>()).clone();
}

}  // namespace facebatch::render
