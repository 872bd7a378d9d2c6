// Cost of the paper's loss terms (forward + backward) at the paper's sizes
// (224 x 224 images, 192 x 224 UV maps, float32) and of one batched optimiser
// step over the fitted latents (f_S, f_A: 320, L: 27, M: 8).
//   build/facebatch_benchmarks --benchmark_filter=Fit
#include "fit/Losses.h"
#include "fit/Optimiser.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

using namespace facebatch::fit;
constexpr int64_t kU = 192, kV = 224, kImg = 224;

at::Tensor FaceMask() {
  // an ellipse covering most of the UV domain, left-right symmetric
  auto r = torch::arange(kU, torch::kFloat32).view({kU, 1});
  auto c = torch::arange(kV, torch::kFloat32).view({1, kV});
  return ((r - 95.5) / 90).pow(2) + ((c - 111.5) / 105).pow(2) < 1;
}

void Run(benchmark::State& state, const std::function<at::Tensor(const at::Tensor&)>& loss, bool image) {
  torch::manual_seed(0);
  const int64_t b = state.range(0);
  auto x = image ? torch::rand({b, 3, kImg, kImg}) : torch::rand({b, 3, kU, kV});
  x.requires_grad_(true);
  for (auto _ : state) {
    auto y = loss(x);
    y.backward();
    benchmark::DoNotOptimize(x.grad().data_ptr());
    x.mutable_grad() = at::Tensor();
  }
  state.SetItemsProcessed(state.iterations() * b);
}

void BM_FitPhotometric(benchmark::State& state) {
  const int64_t b = state.range(0);
  auto input = torch::rand({b, 3, kImg, kImg});
  auto cov = torch::rand({b, 1, kImg, kImg}) > 0.5;
  Run(state, [&](const at::Tensor& x) { return PhotometricLoss(x, input, cov).mean; }, true);
}
void BM_FitAlbedoSymmetry(benchmark::State& state) {
  auto mask = FaceMask();
  Run(state, [&](const at::Tensor& x) { return AlbedoSymmetryLoss(x, mask).mean; }, false);
}
void BM_FitAlbedoConstancy(benchmark::State& state) {
  auto mask = FaceMask();
  auto input_uv = torch::rand({state.range(0), 3, kU, kV});
  Run(state, [&](const at::Tensor& x) { return AlbedoConstancyLoss(x, input_uv, {}, mask).mean; }, false);
}
void BM_FitShapeSmoothness(benchmark::State& state) {
  auto mask = FaceMask();
  Run(state, [&](const at::Tensor& x) { return ShapeSmoothnessLoss(x, mask).mean; }, false);
}
void BM_FitResidual(benchmark::State& state) {
  auto mask = FaceMask();
  auto proxy = torch::rand({state.range(0), 3, kU, kV});
  auto vis = torch::rand({state.range(0), 1, kU, kV});
  Run(state, [&](const at::Tensor& x) {
    return ResidualMagnitudeLoss(x, proxy, mask).mean + ResidualSymmetryLoss(x, proxy, vis, mask).mean;
  }, false);
}

void BM_FitAdamStep(benchmark::State& state) {
  const int64_t b = state.range(0);
  std::vector<at::Tensor> params = {torch::randn({b, 320}).requires_grad_(true), torch::randn({b, 320}).requires_grad_(true),
                                    torch::randn({b, 27}).requires_grad_(true), torch::randn({b, 2, 4}).requires_grad_(true)};
  BatchOptimiser opt(params, {});
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
  for (auto _ : state) opt.Step();
  state.SetItemsProcessed(state.iterations() * b);
}

BENCHMARK(BM_FitPhotometric)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitAlbedoSymmetry)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitAlbedoConstancy)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitShapeSmoothness)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitResidual)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitAdamStep)->Arg(8)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace
