// The model on a CUDA device gives the CPU's results, and a model saved from
// the GPU loads on the CPU. Skipped where no CUDA device is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ModelTestUtil.h"
#include "TestSupport.h"

namespace facebatch::model {
namespace {
using testutil::TinyConfig;
using testutil::TinyModel;

TEST(ModelDevice, CudaMatchesCpuAndSavesAcrossDevices) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto cpu = TinyModel(TinyConfig(), 7);
  cpu.eval();
  auto gpu = cpu.Clone();
  gpu.to(torch::Device(torch::kCUDA));
  torch::manual_seed(3);
  const int64_t S = cpu.config().image_size;
  auto images = torch::rand({2, 3, S, S});
  torch::NoGradGuard no_grad;
  auto e_cpu = cpu.Encode(images);
  auto e_gpu = gpu.Encode(images.to(torch::kCUDA));
  EXPECT_TRUE(torch::allclose(e_gpu.f_shape.cpu(), e_cpu.f_shape, 1e-3, 1e-4));
  EXPECT_TRUE(torch::allclose(e_gpu.projection.cpu(), e_cpu.projection, 1e-3, 1e-3));
  auto s_cpu = cpu.DecodeShape(e_cpu.f_shape), s_gpu = gpu.DecodeShape(e_cpu.f_shape.to(torch::kCUDA));
  auto a_cpu = cpu.DecodeAlbedo(e_cpu.f_albedo), a_gpu = gpu.DecodeAlbedo(e_cpu.f_albedo.to(torch::kCUDA));
  EXPECT_TRUE(torch::allclose(s_gpu.value.cpu(), s_cpu.value, 1e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(s_gpu.proxy.cpu(), s_cpu.proxy, 1e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(a_gpu.value.cpu(), a_cpu.value, 1e-3, 1e-4));
  testing::TempDir dir;
  const auto path = (dir / "gpu.h5").string();
  gpu.Save(path);
  auto back = FaceModel::Load(path, torch::Device(torch::kCPU));
  back.eval();
  EXPECT_TRUE(torch::equal(back.DecodeShape(e_cpu.f_shape).value, s_cpu.value));
}

}  // namespace
}  // namespace facebatch::model
