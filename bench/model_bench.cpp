// Forward and forward+backward time per image of E, D_S and D_A (paper
// sections 3.2-3.4) at the paper and demo presets, batch 1 and 8.
//   build/facebatch_benchmarks --benchmark_filter=Model
// Counters: s_per_image (seconds per image), params (of the timed network).
// Threads: FACEBATCH_THREADS (default: all cores); BLAS is kept single-threaded.
// FACEBATCH_BENCH_CONFIG=FILE.json adds a "custom" preset (ModelConfig JSON, as
// printed in a model file's "configuration" attribute) to size new presets.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <map>

#include "core/Env.h"
#include "model/FaceModel.h"
#include "render/Template.h"

namespace {
using facebatch::model::FaceModel;

FaceModel& ModelFor(const std::string& preset) {
  static std::map<std::string, FaceModel> cache;
  auto it = cache.find(preset);
  if (it == cache.end()) {
    facebatch::model::InstallTorchThreadHook();
    const char* t = std::getenv("FACEBATCH_THREADS");
    facebatch::env::ConfigureThreads(t ? std::atoi(t) : 0);
    facebatch::model::ModelConfig c;
    if (preset == "custom") {
      std::ifstream in(std::getenv("FACEBATCH_BENCH_CONFIG"));
      std::stringstream ss;
      ss << in.rdbuf();
      c = facebatch::model::ModelConfig::FromJson(ss.str());
    } else {
      c = facebatch::model::Preset(preset);
    }
    auto tmpl = facebatch::render::DefaultTemplate(c.uv_rows, c.uv_cols);
    c.regions = tmpl.topology.regions;  // as `model init` does
    it = cache.emplace(preset, FaceModel::Create(c, tmpl, 0)).first;
  }
  return it->second;
}

enum Part { kEncoder = 0, kShape = 1, kAlbedo = 2 };

void BM_Model(benchmark::State& state, const std::string& preset, Part part, bool backward) {
  auto& model = ModelFor(preset);
  const int B = static_cast<int>(state.range(0));
  const auto& c = model.config();
  model.train(backward);
  torch::manual_seed(0);
  auto images = torch::rand({B, 3, c.image_size, c.image_size});
  auto fs = torch::randn({B, c.latent_shape}), fa = torch::randn({B, c.latent_albedo});
  auto params = part == kEncoder ? model.encoder_parameters()
                                 : part == kShape ? model.shape_decoder_parameters() : model.albedo_decoder_parameters();
  for (auto _ : state) {
    std::unique_ptr<torch::NoGradGuard> guard;
    if (!backward) guard = std::make_unique<torch::NoGradGuard>();
    torch::Tensor loss;
    if (part == kEncoder) {
      auto e = model.Encode(images);
      loss = e.f_shape.sum() + e.f_albedo.sum() + e.projection.sum() + e.lighting.sum();
    } else {
      auto d = part == kShape ? model.DecodeShape(fs) : model.DecodeAlbedo(fa);
      loss = d.value.sum() + d.proxy.sum();
    }
    if (backward) {
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      loss.backward();
    }
    benchmark::DoNotOptimize(loss.data_ptr());
  }
  int64_t n = 0;
  for (auto& p : params) n += p.numel();
  state.counters["params"] = static_cast<double>(n);
  state.counters["s_per_image"] =
      benchmark::Counter(static_cast<double>(state.iterations() * B), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  model.eval();
}

void Register() {
  std::vector<std::string> presets = {"demo", "paper"};
  if (std::getenv("FACEBATCH_BENCH_CONFIG")) presets.push_back("custom");
  for (const std::string& preset : presets)
    for (int part = 0; part < 3; ++part)
      for (bool bwd : {false, true}) {
        static const char* names[] = {"E", "D_S", "D_A"};
        auto name = "Model/" + preset + "/" + names[part] + (bwd ? "/fwd+bwd" : "/fwd");
        auto* b = benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
          BM_Model(s, preset, static_cast<Part>(part), bwd);
        });
        b->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();
        if (preset == "paper") b->Iterations(2);
      }
}

const int kRegistered = (Register(), 0);

}  // namespace
