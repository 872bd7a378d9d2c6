// Rasteriser dispatcher: checks the torch inputs, then picks the backend.
#include "render/Rasterise.h"
#include "render/TensorText.h"

#include <torch/torch.h>

#include <sstream>

#include "core/Error.h"

namespace facebatch::render {

RasterOutput Rasterise(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                       const RasterOptions& options) {
  const char* where = "render::Rasterise";
  if (!screen.defined() || screen.dim() != 3 || screen.size(2) != 2)
    throw Error(std::string(where) + ": screen must be [B, N, 2] (got " + ShapeString(screen) + ")");
  if (!depth.defined() || depth.dim() != 2 || depth.size(0) != screen.size(0) || depth.size(1) != screen.size(1))
    throw Error(std::string(where) + ": depth must be [B, N] matching screen " + ShapeString(screen));
  if (!triangles.defined() || triangles.dim() != 2 || triangles.size(1) != 3)
    throw Error(std::string(where) + ": triangles must be [F, 3]");
  if (screen.scalar_type() != at::kFloat || depth.scalar_type() != at::kFloat)
    throw Error(std::string(where) + ": screen and depth must be float32");
  if (triangles.scalar_type() != at::kLong) throw Error(std::string(where) + ": triangles must be int64");
  if (!screen.is_contiguous() || !depth.is_contiguous() || !triangles.is_contiguous())
    throw Error(std::string(where) + ": screen, depth and triangles must be contiguous");
  if (screen.device() != depth.device() || screen.device() != triangles.device())
    throw Error(std::string(where) + ": screen, depth and triangles must be on one device");
  if (options.height <= 0 || options.width <= 0 || options.band_rows <= 0)
    throw Error(std::string(where) + ": image size and band_rows must be positive");
  if (triangles.numel() > 0) {
    auto mm = torch::aminmax(triangles);
    if (std::get<0>(mm).item<int64_t>() < 0 || std::get<1>(mm).item<int64_t>() >= screen.size(1))
      throw Error(std::string(where) + ": triangle vertex ids out of range [0, " + std::to_string(screen.size(1)) + ")");
  }
  if (screen.is_cuda()) return detail::RasteriseCUDA(screen, depth, triangles, options);
  if (!screen.is_cpu()) throw Error(std::string(where) + ": unsupported device " + screen.device().str());
  return detail::RasteriseCPU(screen, depth, triangles, options);
}

}  // namespace facebatch::render
