// main() of facebatch_benchmarks. Like the facebatch binary (tools/facebatch/main.cpp), it
// first makes idle OpenMP threads passive (core/Env.h EnsurePassiveOpenMP: re-executes
// itself with OMP_WAIT_POLICY=PASSIVE unless the variable is set). Without it ATen's
// spinning OpenMP threads starve the rasteriser's TBB threads, and the benchmarks measured
// something the real commands never run (docs/bench.md: the train_bench discrepancy).
#include <benchmark/benchmark.h>

#include "core/Env.h"

int main(int argc, char** argv) {
  facebatch::env::EnsurePassiveOpenMP(argv);
  facebatch::env::TuneAllocator();  // see Env.h: keep freed tensor memory for the next iteration
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
