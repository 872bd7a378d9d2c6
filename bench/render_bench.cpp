// Render benchmarks (docs/render.md "Performance"): a batch of paper-resolution
// face meshes (192 x 224 UV grid, ~32k vertices, ~63k triangles) rendered at
// 224 x 224. Arg 0 = threads (ATen intra-op and TBB). Counter per_image =
// wall seconds per image. Run: build/facebatch_benchmarks --benchmark_filter=Render
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <tbb/global_control.h>
#include <torch/torch.h>

#include <cmath>

#include "render/Lighting.h"
#include "render/Projection.h"
#include "render/Rasterise.h"
#include "render/Render.h"
#include "render/Template.h"

namespace {

using namespace facebatch::render;

constexpr int kBatch = 8;

struct Scene {
  FaceTopology topo;
  at::Tensor S, A, M, L, screen, depth;
};

// The batch's cameras: yaw -57..+57 degrees, small random pitch and roll (drawn from
// the global generator), scale 10, centred in the 224 x 224 image.
at::Tensor BenchCameras() {
  auto yaw = torch::linspace(-1.0, 1.0, kBatch), pitch = 0.1 * torch::randn({kBatch}), roll = 0.1 * torch::randn({kBatch});
  return ComposeM(torch::full({kBatch}, 10.0f), RotationFromPoseAngles(pitch, yaw, roll), torch::full({kBatch, 2}, 111.5f));
}

const Scene& GetScene() {
  static const Scene scene = [] {
    Scene s;
    auto t = DefaultTemplate(192, 224);
    s.topo = t.topology;
    torch::manual_seed(0);
    auto S0 = VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0));
    s.S = (S0 + 0.1 * torch::randn({kBatch, S0.size(1), 3})).contiguous();
    s.A = VerticesFromUVMap(t.topology, t.mean_albedo.unsqueeze(0)).expand({kBatch, -1, -1}).contiguous();
    s.M = BenchCameras();
    s.L = SimpleLighting(kBatch, 0.5, 0.6, 0.2, 0.3, 1.0);
    s.screen = ProjectVertices(s.M, s.S).contiguous();
    s.depth = VertexDepth(s.M, s.S).contiguous();
    return s;
  }();
  return scene;
}

void SetThreads(benchmark::State& state) {
  at::set_num_threads(static_cast<int>(state.range(0)));
}

void PerImage(benchmark::State& state) {
  state.counters["per_image"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void BM_RasteriseForward(benchmark::State& state) {
  const auto& s = GetScene();
  SetThreads(state);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, state.range(0));
  auto tri = s.topo.triangles.contiguous();
  for (auto _ : state) {
    auto out = Rasterise(s.screen, s.depth, tri, RasterOptions{});
    benchmark::DoNotOptimize(out.triangle_id.data_ptr<int64_t>());
  }
  PerImage(state);
}
BENCHMARK(BM_RasteriseForward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

// The template's own mean face (no per-vertex noise), as the fit renders a decoded
// face: paper UV grid (192 x 224) or the demo preset's (96 x 112, the bundled
// model's), same poses. Args: threads, 0 = paper / 1 = demo grid.
struct MeshScene {
  at::Tensor triangles, screen, depth;
};

MeshScene TemplateScene(int rows, int cols) {
  auto t = DefaultTemplate(rows, cols);
  auto S = VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0)).expand({kBatch, -1, -1}).contiguous();
  torch::manual_seed(0);
  auto M = BenchCameras();
  return MeshScene{t.topology.triangles.contiguous(), ProjectVertices(M, S).contiguous(), VertexDepth(M, S).contiguous()};
}

const MeshScene& GetTemplateScene(int which) {
  static const MeshScene scenes[2] = {TemplateScene(192, 224), TemplateScene(96, 112)};
  return scenes[which];
}

void BM_RasteriseTemplate(benchmark::State& state) {
  const auto& s = GetTemplateScene(static_cast<int>(state.range(1)));
  SetThreads(state);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, state.range(0));
  for (auto _ : state) {
    auto out = Rasterise(s.screen, s.depth, s.triangles, RasterOptions{});
    benchmark::DoNotOptimize(out.triangle_id.data_ptr<int64_t>());
  }
  PerImage(state);
}
BENCHMARK(BM_RasteriseTemplate)->ArgsProduct({{1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

void BM_RenderForward(benchmark::State& state) {
  const auto& s = GetScene();
  SetThreads(state);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, state.range(0));
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    auto r = Render(s.topo, s.S, s.A, s.M, s.L, 224, 224);
    benchmark::DoNotOptimize(r.image.data_ptr<float>());
  }
  PerImage(state);
}
BENCHMARK(BM_RenderForward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

void BM_RenderForwardBackward(benchmark::State& state) {
  const auto& s = GetScene();
  SetThreads(state);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, state.range(0));
  auto target = torch::rand({kBatch, 3, 224, 224});
  for (auto _ : state) {
    auto S = s.S.clone().requires_grad_(true), A = s.A.clone().requires_grad_(true);
    auto M = s.M.clone().requires_grad_(true), L = s.L.clone().requires_grad_(true);
    auto r = Render(s.topo, S, A, M, L, 224, 224);
    auto loss = ((r.image - target).abs() * r.mask).sum();
    loss.backward();
    benchmark::DoNotOptimize(S.grad().data_ptr<float>());
  }
  PerImage(state);
}
BENCHMARK(BM_RenderForwardBackward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace

namespace {

// Pieces of the forward pass (1 thread), to see where the time goes: 0 vertex
// normals, 1 normals + SH shading, 2 interpolation, 3 projection, 4 UV map -> vertices.
void BM_RenderPieces(benchmark::State& state) {
  const auto& s = GetScene();
  at::set_num_threads(1);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
  torch::NoGradGuard no_grad;
  auto raster = Rasterise(s.screen, s.depth, s.topo.triangles, RasterOptions{});
  auto uv_maps = torch::rand({kBatch, 3, 192, 224});
  for (auto _ : state) {
    switch (state.range(0)) {
      case 0: benchmark::DoNotOptimize(VertexNormals(s.topo, s.S)); break;
      case 1: benchmark::DoNotOptimize(SHShading(VertexNormals(s.topo, s.S), s.L)); break;
      case 2: benchmark::DoNotOptimize(InterpolateAttributes(s.topo.triangles, raster.triangle_id, s.screen, s.A)); break;
      case 3: benchmark::DoNotOptimize(ProjectVertices(s.M, s.S)); break;
      case 4: benchmark::DoNotOptimize(VerticesFromUVMap(s.topo, uv_maps)); break;
    }
  }
  PerImage(state);
}
BENCHMARK(BM_RenderPieces)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Arg(4)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

}  // namespace
