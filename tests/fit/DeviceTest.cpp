// The same losses and optimiser on CUDA as on the CPU (skipped without a CUDA
// LibTorch and a GPU; Debian's LibTorch is CPU-only, so this runs on GPU
// machines with a CUDA build, see docs/fit.md "Devices").
#include "fit/Losses.h"
#include "fit/Optimiser.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

namespace facebatch::fit {
namespace {

#define SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

void ExpectSame(const LossResult& cpu, const LossResult& cuda, const char* what) {
  ASSERT_TRUE(cuda.per_image.is_cuda()) << what;
  EXPECT_TRUE(torch::allclose(cpu.per_image, cuda.per_image.cpu(), 1e-5, 1e-6))
      << what << "\ncpu " << cpu.per_image << "\ncuda " << cuda.per_image.cpu();
}

TEST(Device, EveryLossMatchesTheCpu) {
  SKIP_WITHOUT_CUDA();
  const torch::Device gpu(torch::kCUDA);
  torch::manual_seed(21);
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const auto o = torch::dtype(dtype);
    auto img = torch::rand({3, 3, 16, 16}, o), in = torch::rand({3, 3, 16, 16}, o);
    auto cov = torch::rand({3, 1, 16, 16}) > 0.4;
    ExpectSame(PhotometricLoss(img, in, cov), PhotometricLoss(img.to(gpu), in.to(gpu), cov.to(gpu)), "photometric");
    auto mask = torch::rand({12, 14}) > 0.2;  // stays on the CPU: UV masks may live anywhere
    auto a = torch::rand({3, 3, 12, 14}, o), ap = torch::rand({3, 3, 12, 14}, o);
    auto iuv = torch::rand({3, 3, 12, 14}, o);
    auto valid = torch::rand({3, 1, 12, 14}) > 0.3;
    auto vis = torch::rand({3, 1, 12, 14}, o);
    ExpectSame(AlbedoSymmetryLoss(a, mask), AlbedoSymmetryLoss(a.to(gpu), mask), "symmetry");
    ExpectSame(AlbedoConstancyLoss(a, iuv, valid, mask), AlbedoConstancyLoss(a.to(gpu), iuv.to(gpu), valid.to(gpu), mask),
               "constancy");
    ExpectSame(ShapeSmoothnessLoss(a, mask), ShapeSmoothnessLoss(a.to(gpu), mask.to(gpu)), "smoothness");
    ExpectSame(ResidualMagnitudeLoss(a, ap, mask), ResidualMagnitudeLoss(a.to(gpu), ap.to(gpu), mask), "residual");
    ExpectSame(ResidualSymmetryLoss(a, ap, vis, mask), ResidualSymmetryLoss(a.to(gpu), ap.to(gpu), vis.to(gpu), mask),
               "residual symmetry");
    auto m = torch::randn({3, 2, 4}, o), pts = torch::randn({3, 68, 3}, o), u = torch::randn({3, 68, 2}, o);
    auto w = torch::rand({3, 68}, o);
    ExpectSame(LandmarkLoss(ProjectPoints(m, pts), u, w),
               LandmarkLoss(ProjectPoints(m.to(gpu), pts.to(gpu)), u.to(gpu), w.to(gpu)), "landmark");
  }
  // Mixed devices are named errors.
  auto img = torch::rand({1, 3, 4, 4});
  EXPECT_THROW(PhotometricLoss(img.to(gpu), img, torch::ones({1, 1, 4, 4}, torch::kBool).to(gpu)), std::exception);
}

TEST(Device, PerceptualLossOnCuda) {
  SKIP_WITHOUT_CUDA();
  torch::jit::Module net("DeviceFeatures");
  net.register_parameter("w", torch::full({}, 2.0), false);
  net.define("def forward(self, x):\n    return (x * self.w, torch.relu(x - 0.5))\n");
  PerceptualLoss loss({}, net);
  auto a = torch::rand({2, 3, 8, 8}), b = torch::rand({2, 3, 8, 8});
  auto cpu = loss(a, b);
  auto gpu_a = a.cuda().requires_grad_(true);
  auto cuda = loss(gpu_a, b.cuda());
  ExpectSame(cpu, cuda, "perceptual");
  cuda.mean.backward();
  EXPECT_TRUE(gpu_a.grad().defined());
}

TEST(Device, OptimiserOnCudaFreezesAndConverges) {
  SKIP_WITHOUT_CUDA();
  const auto o = torch::dtype(torch::kFloat32).device(torch::kCUDA);
  torch::manual_seed(22);
  auto centre = torch::randn({4, 8}, o);
  auto x = torch::zeros({4, 8}, o).requires_grad_(true);
  ObjectiveFn objective = [&] {
    LossTerms t;
    t.Add("quadratic", 1.0, (x - centre).pow(2).sum(1) + 1.0);
    return t;
  };
  MinimiseOptions mo;
  mo.max_iterations = 400;
  mo.optimiser.step_size = 0.05;
  mo.convergence.relative_tolerance = 1e-7;
  auto s = MinimiseBatch({x}, objective, mo);
  for (const auto& summary : s) {
    EXPECT_TRUE(summary.IsUsable()) << summary.FullReport();
    EXPECT_LT(summary.final_loss, 1.0 + 1e-3) << summary.FullReport();
  }
  BatchOptimiser opt({x}, {});
  opt.Deactivate(torch::tensor({true, false, false, false}));
  auto before = x.detach().clone();
  ((x - 5).pow(2)).sum().backward();
  opt.Step();
  EXPECT_TRUE(torch::equal(x[0], before[0]));
  EXPECT_FALSE(torch::equal(x[1], before[1]));
}

}  // namespace
}  // namespace facebatch::fit
