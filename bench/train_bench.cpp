// Seconds per training step of `facebatch train` (forward, the objective of
// each phase, backward, Adam) for the demo preset at batch 8 (docs/train.md).
//   OPENBLAS_NUM_THREADS=1 build/facebatch_benchmarks --benchmark_filter=TrainStep
// The batch is a fixed random batch (data loading runs in other threads and is
// not timed). Threads: FACEBATCH_THREADS (default: all cores).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>

#include "core/Env.h"
#include "model/FaceModel.h"
#include "render/Template.h"
#include "train/Trainer.h"

namespace {
using namespace facebatch;

void TrainStep(benchmark::State& state, train::Phase phase) {
  model::InstallTorchThreadHook();
  const char* t = std::getenv("FACEBATCH_THREADS");
  env::ConfigureThreads(t ? std::atoi(t) : 0);
  auto config = model::Preset("demo");
  auto tmpl = render::DefaultTemplate(config.uv_rows, config.uv_cols);
  config.regions = tmpl.topology.regions;
  auto m = model::FaceModel::Create(config, tmpl, 1);
  m.train();
  const int64_t B = state.range(0), S = config.image_size;
  torch::manual_seed(1);
  train::Batch batch;
  batch.images = torch::rand({B, 3, S, S});
  batch.landmarks = torch::rand({B, 68, 2}) * 100 + 62;
  batch.has_ground_truth = torch::ones({B});
  batch.shape_uv = tmpl.mean_shape.unsqueeze(0).repeat({B, 1, 1, 1});
  batch.albedo_uv = tmpl.mean_albedo.unsqueeze(0).repeat({B, 1, 1, 1});
  batch.M = m.normalisation().m_mean.view({1, 2, 4}).repeat({B, 1, 1});
  batch.L = m.normalisation().l_mean.view({1, 27}).repeat({B, 1});
  for (int64_t i = 0; i < B; ++i) batch.ids.push_back(std::to_string(i));
  train::TrainOptions o;
  torch::optim::Adam adam(m.parameters(), torch::optim::AdamOptions(1e-3));
  for (auto _ : state) {
    adam.zero_grad();
    auto terms = train::ComputeObjective(m, batch, phase, o);
    terms.Mean().backward();
    adam.step();
  }
  state.counters["s_per_step"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void TrainStepPretrainDemo(benchmark::State& s) { TrainStep(s, train::Phase::kPretrain); }
void TrainStepFullDemo(benchmark::State& s) { TrainStep(s, train::Phase::kFull); }
BENCHMARK(TrainStepPretrainDemo)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(15.0)->UseRealTime();
BENCHMARK(TrainStepFullDemo)->Arg(8)->Unit(benchmark::kMillisecond)->MinTime(15.0)->UseRealTime();

}  // namespace
