#pragma once
// `facebatch bench` (issue 9, benchmark part): throughput and a per-stage
// breakdown of the fit job's work on this machine, for the demo and paper
// presets (fresh, untrained models of the preset, or a model file), on the CPU
// or CUDA, at several thread counts, with the machine's own reference.
//
// One measured pass = the whole fit of one batch of B bundled sample images,
// done in sequence on the calling thread (no pipeline overlap, so the stages
// can be timed one by one and add up):
//   image decode (io::LoadImageBgr), crop (io::CropFace + conversion to the
//   model's tensor), encoder (E), the optimiser iterations (fit::Fitter:
//   per iteration decode maps (D_S, D_A), render I(S, A), losses (eq. 4 + eq. 7),
//   backward, optimiser step), the final decode + render + metrics, and the
//   HDF5 write (batch::MakeFitRecord + the real batch::ShardWriter, one closed
//   part file per batch, in a temporary directory).
// The reference is the decoders' forward + backward alone (to the latents) at
// the same batch on the same library and device; the ratio of a full fit
// iteration to it compares across machines (issue 7's target: <= 1.3).
// Thread scaling runs the same pass at each thread count (ratio to the first
// count asked). Peak RSS: getrusage after each preset (the process peak so far).
// On CUDA every clock read of a stage waits for the device
// (fit::FitOptions::synchronize_timing); backward's asynchronous tail is then
// charged to the optimiser step, their sum stays exact.
#include <string>
#include <vector>

namespace facebatch::bench {

struct BenchOptions {
  std::string preset = "demo";   ///< --preset demo | paper | both (fresh untrained model of the preset)
  std::string model;             ///< --model F.h5: benchmark this model instead of a preset
  std::string device = "cpu";    ///< --device cpu | cuda | cuda:K
  int batch = 4;                 ///< --batch images per fit batch
  int iterations = 10;           ///< --iterations optimiser iterations per batch (no early exit)
  int repeats = 1;               ///< --repeats timed passes per thread count (median reported), after a warm-up
  std::string threads = "max";   ///< --threads max (1, 2, 4, ... up to all cores) | comma list, e.g. 1,2
  std::string samples;           ///< --samples corpus directory ("" = the bundled samples/300W-LP)
  std::string json;              ///< --json FILE: also write the report as JSON
  /// --default-fit-batches N: after the thread runs, N batches fitted with the fit command's
  /// defaults (coarse-to-fine schedule, per-image early exit) at the most threads: the
  /// images/s a user of `facebatch fit` gets (0: skip; the paper preset takes minutes per batch).
  int default_fit_batches = 1;
  /// --train-steps N: after the fit runs, N timed `facebatch train` steps per phase (supervised
  /// pre-training, the full objective, the encoder stage's pre-training; after one warm-up step) at --train-batch, at the most
  /// threads: steps/s, images/s, counted FLOPs and their sgemm fraction (0: skip).
  int train_steps = 2;
  int train_batch = 8;               ///< --train-batch (the demo recipe's batch)
  /// --levers 1: at the most threads, the inference levers of model/Inference.h one by one
  /// (the decoders' forward + backward to the latents at each cumulative setting, median of
  /// max(3, --repeats)) and a joint fit iteration at each, and the fit at its defaults with every
  /// lever off and with the default levers, batch by batch alternating: their speed-up in one run
  /// (0: skip).
  int levers = 1;
  void Check() const;            ///< UsageError on bad values
};

/// Thread counts of `text` ("max" or a comma list of counts >= 1), given `cores`.
std::vector<int> ParseThreadList(const std::string& text, int cores);

/// A stage's time. Batch stages are seconds per batch; iteration stages are
/// seconds per optimiser iteration (decode, render, losses: per objective
/// evaluation; backward, step: per iteration).
struct Stage {
  std::string name;
  double seconds = 0;
};

/// One measured configuration (preset x thread count).
struct BenchRun {
  int threads = 1;
  double total_seconds = 0;       ///< wall time of the whole fit of one batch (median pass)
  double images_per_second = 0;   ///< batch / total_seconds
  std::vector<Stage> batch_stages;      ///< image_decode, crop, encoder, iterations, finish, hdf5_write (per batch)
  std::vector<Stage> iteration_stages;  ///< decode_maps, render, losses, backward, optimiser_step (per iteration)
  double other_seconds = 0;       ///< total - sum of batch stages (bookkeeping, transfers)
  double iteration_seconds = 0;   ///< one fit iteration: the sum of the iteration stages
  double reference_seconds = 0;   ///< the decoders' forward + backward alone at the same batch
  double ratio = 0;               ///< iteration_seconds / reference_seconds
  /// (render + losses + optimiser step) / iteration_seconds: what a fit iteration adds to the
  /// network compute, from one measurement (less sensitive to machine load than `ratio`).
  double overhead_fraction = 0;
  int iterations = 0;             ///< optimiser iterations per batch (measured)
  int objective_evaluations = 0;  ///< objective evaluations per batch (iterations + 1 + restores)
  /// Issue 16: the counted FLOPs of one fit iteration (PresetReport::flops_per_iteration) over
  /// iteration_seconds; this machine's sgemm rate on the same work (every counted convolution and
  /// matrix product of the iteration replayed as one at::mm of its GEMM shape, same threads);
  /// their ratio. reference_gflops: the same FLOPs over the decoders' forward + backward alone.
  double achieved_gflops = 0, gemm_gflops = 0, gemm_fraction = 0, reference_gflops = 0;
};

/// FLOPs of one network pass at the bench's batch (bench/FlopCounter.h: convolutions and matrix
/// products; every layer listed).
struct NetworkFlops {
  std::string name;    ///< encoder_forward, shape_forward, shape_backward, albedo_forward, albedo_backward
  double flops = 0;
  std::vector<std::pair<std::string, double>> layers;  ///< "op shapes" and its FLOPs, in call order
};

/// The whole fit at the fit command's defaults (BenchOptions::default_fit_batches).
struct DefaultFitRun {
  int threads = 0, batches = 0;
  std::string schedule;              ///< fit::FitOptions's default
  double seconds = 0;                ///< wall time of the batches, image decode to HDF5 write
  double images_per_second = 0;
  double iterations_per_image = 0;   ///< optimiser iterations per image over the stages (mean)
};

/// One training phase's step (BenchOptions::train_steps).
struct TrainRun {
  std::string phase;                 ///< pretrain | full | encoder | decoders (pre-training of that part alone, --train-parts)
  int threads = 0, batch = 0, steps = 0;
  double seconds_per_step = 0;       ///< median of the timed steps: objective, backward, Adam
  double steps_per_second = 0, images_per_second = 0;
  /// The decoders' forward + backward alone at the same batch, weights' gradients included
  /// (what a training step cannot do without), and the ratio of a step to it.
  double reference_seconds = 0, ratio = 0;
  double flops_per_step = 0;         ///< counted (bench/FlopCounter.h): E, D_S, D_A forward + backward
  double achieved_gflops = 0, gemm_gflops = 0, gemm_fraction = 0;
};

/// One cumulative setting of the inference levers (BenchOptions::levers).
struct LeverStep {
  std::string name;  ///< "none", "+ proxy heads skipped", "+ BatchNorm folded", "+ transposed as phases", "+ channels-last"
  bool skip_unused_proxy_heads = false, fold_batchnorm = false, transposed_as_phases = false, channels_last = false;
  double decoders_seconds = 0;       ///< D_S + D_A forward + backward to the latents, with the fit's heads
  double speedup = 0;                ///< the first step's decoders_seconds / this one's
  double fit_iteration_seconds = 0;  ///< one joint fit iteration at this setting (as BenchRun::iteration_seconds)
  double fit_iteration_speedup = 0;  ///< the first step's fit_iteration_seconds / this one's
};

struct LeverReport {
  int threads = 0;
  std::vector<LeverStep> steps;      ///< cumulative, from no lever to all (the defaults)
  /// The fit at its defaults with every lever off and with the default levers (InferenceOptions{}), alternating
  /// (--default-fit-batches each; batches 0: skipped).
  DefaultFitRun defaults_without, defaults_with;
  double default_fit_speedup = 0;    ///< defaults_with.images_per_second / defaults_without's
};

struct PresetReport {
  std::string preset;             ///< demo, paper, or the model file's preset
  std::string model;              ///< model file ("" for a fresh preset model)
  std::string device;
  int batch = 0, iterations = 0, image_size = 0, uv_rows = 0, uv_cols = 0;
  int64_t parameters = 0;
  std::vector<NetworkFlops> networks;  ///< E, D_S, D_A forward (and backward to the latents)
  /// D_S and D_A forward + backward to the latents: the counted work of one fit iteration (the
  /// renderer and the elementwise work are not counted).
  double flops_per_iteration = 0;
  std::vector<BenchRun> runs;     ///< one per thread count, in the order asked
  DefaultFitRun defaults;         ///< batches 0 when skipped
  std::vector<TrainRun> train;    ///< pretrain, full (empty when skipped)
  LeverReport levers;             ///< threads 0 when skipped
  double peak_rss_mib = 0;        ///< process peak RSS after this preset (MiB)
};

struct BenchReport {
  std::string machine;            ///< CPU model, cores, load average before/after, LibTorch version
  std::vector<PresetReport> presets;
  std::string ToTable() const;    ///< the readable report `facebatch bench` prints
  std::string ToJson() const;     ///< the same as JSON (format: docs/bench.md)
};

/// Runs the benchmark; writes options.json when given (InputError if it cannot).
BenchReport RunBench(const BenchOptions& options);

}  // namespace facebatch::bench
