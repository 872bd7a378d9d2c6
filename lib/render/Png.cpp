#include "render/Png.h"

#include "render/Colour.h"

#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "core/Error.h"

namespace facebatch::render {

void WritePng(const std::string& path, const at::Tensor& image_in, bool srgb) {
  if (!image_in.defined() || image_in.dim() != 3 || image_in.size(0) != 3)
    throw Error("render::WritePng: image must be [3, H, W]");
  auto img = image_in.detach().to(at::kCPU, at::kFloat).clamp(0, 1);
  cv::Mat bgr;
  if (srgb) {
    bgr = LinearRgbToSrgbBgr8(img);
  } else {  // data shown as they are (e.g. a depth map scaled to [0, 1])
    auto bytes = (img.flip(0).permute({1, 2, 0}) * 255 + 0.5).clamp(0, 255).to(at::kByte).contiguous();
    bgr = cv::Mat(static_cast<int>(bytes.size(0)), static_cast<int>(bytes.size(1)), CV_8UC3, bytes.data_ptr()).clone();
  }
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr, {cv::IMWRITE_PNG_COMPRESSION, 9});
  } catch (const cv::Exception& e) {
    throw InputError(path, std::string("cannot write PNG: ") + e.what());
  }
  if (!ok) throw InputError(path, "cannot write PNG");
}

}  // namespace facebatch::render
