// CUDA backend seam of the rasteriser.
// TODO(cuda): a native kernel (RasteriseCUDA.cu) belongs here. FOR NOW this
// copies the inputs to the CPU, runs the TBB rasteriser and copies the results
// back, so every device works; the differentiable part (Render.cpp) already
// runs on the tensors' own device.
#include <torch/torch.h>

#include "render/Rasterise.h"

namespace facebatch::render::detail {

RasterOutput RasteriseCUDA(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles,
                           const RasterOptions& options) {
  auto out = RasteriseCPU(screen.cpu(), depth.cpu(), triangles.cpu(), options);
  const auto device = screen.device();
  out.triangle_id = out.triangle_id.to(device, /*non_blocking=*/false);
  out.zbuffer = out.zbuffer.to(device);
  out.visibility = out.visibility.to(device);
  return out;
}

}  // namespace facebatch::render::detail
