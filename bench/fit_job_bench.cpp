// Fit-job benchmarks (issue 7): a fit iteration (decode + render + losses +
// backward + optimiser step) vs the decoders' forward + backward alone, for the
// demo preset at batch 1, 4, 16; images/s of a whole fit (encoder + 10 iterations).
// Run: build/facebatch_benchmarks --benchmark_filter=FitJob
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "fit/Fitter.h"
#include "model/FaceModel.h"
#include "render/Render.h"
#include "render/Template.h"

namespace {
using namespace facebatch;

model::FaceModel& DemoModel() {
  static model::FaceModel m = [] {
    auto c = model::Preset("demo");
    auto t = render::DefaultTemplate(c.uv_rows, c.uv_cols);
    c.regions = t.topology.regions;
    auto mm = model::FaceModel::Create(c, t, 0);
    mm.eval();
    return mm;
  }();
  return m;
}

struct Inputs {
  at::Tensor images, landmarks, weights;
};
Inputs MakeInputs(int64_t B) {
  auto& m = DemoModel();
  const int S = m.config().image_size;
  torch::manual_seed(0);
  Inputs in;
  in.images = torch::rand({B, 3, S, S});
  std::vector<std::vector<std::array<double, 2>>> pts(B);
  for (auto& p : pts)
    for (int k = 0; k < 68; ++k) p.push_back({S * 0.3 + k, S * 0.5});
  std::tie(in.landmarks, in.weights) = fit::PackLandmarks(pts, S, S);
  return in;
}

// The unavoidable network compute: decoders forward + backward to the latents.
void BM_FitJob_DecodersForwardBackward(benchmark::State& state) {
  auto& m = DemoModel();
  for (auto& p : m.parameters()) p.requires_grad_(false);
  const int64_t B = state.range(0);
  auto fs = torch::randn({B, m.config().latent_shape}).requires_grad_(true);
  auto fa = torch::randn({B, m.config().latent_albedo}).requires_grad_(true);
  for (auto _ : state) {
    auto loss = m.DecodeShape(fs).value.sum() + m.DecodeAlbedo(fa).value.sum();
    loss.backward();
    fs.mutable_grad().zero_();
    fa.mutable_grad().zero_();
  }
  state.SetItemsProcessed(state.iterations() * B);
}

// One fit iteration: per-iteration time = (fit with 11 steps - fit with 1 step) / 10; reported
// per iteration with the split objective (decode + render + loss) vs the rest (backward + step).
void BM_FitJob_FitIteration(benchmark::State& state) {
  auto& m = DemoModel();
  const int64_t B = state.range(0);
  auto in = MakeInputs(B);
  fit::FitOptions o;
  o.schedule = "joint";      // the joint stage's iteration (docs/fit.md "Schedule")
  o.relative_tolerance = 0;  // no early exit
  o.steps = 10;
  fit::Fitter fitter(m, o);
  model::Encoding init;
  {
    torch::NoGradGuard ng;
    init = m.Encode(in.images);
  }
  double seconds = 0;
  int64_t iterations = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = fitter.FitFrom(init, in.images, in.landmarks, in.weights);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    iterations += r.summaries[0].iterations;
    benchmark::DoNotOptimize(r.f_shape);
  }
  const auto& t = fitter.timing();
  state.counters["objective_s_per_call"] = t.objective / std::max<int64_t>(1, t.objective_calls);
  state.counters["optimise_s_total"] = t.optimise;
  state.counters["finish_s_total"] = t.finish;
  state.counters["s_per_iteration"] = (t.optimise) / std::max<int64_t>(1, iterations);
  state.counters["images_per_s"] = benchmark::Counter(static_cast<double>(B * state.iterations()) / seconds);
}

BENCHMARK(BM_FitJob_DecodersForwardBackward)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FitJob_FitIteration)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
