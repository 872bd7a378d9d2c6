#include "bench/Bench.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <array>
#include <nlohmann/json.hpp>
#include <sstream>

#include "batch/FitJob.h"
#include "batch/ShardWriter.h"
#include "bench/FlopCounter.h"
#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "facebatch/Version.h"
#include "fit/Fitter.h"
#include "io/Crop.h"
#include "io/Image.h"
#include "io/Index.h"
#include "io/Manifest.h"
#include "io/Shard.h"
#include "model/FaceModel.h"
#include "render/Template.h"
#include "train/Data.h"
#include "train/Trainer.h"

namespace facebatch::bench {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

const char* const kBatchStages[] = {"image_decode", "crop", "encoder", "iterations", "finish", "hdf5_write"};
const char* const kIterationStages[] = {"decode_maps", "render", "losses", "backward", "optimiser_step"};

// A scratch directory removed on scope exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::temp_directory_path() /
           fmt::format("facebatch-bench-{}-{}", ::getpid(), Clock::now().time_since_epoch().count());
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string DefaultSamples() {
  fs::path src = fs::path(FACEBATCH_SOURCE_DIR) / "samples" / "300W-LP";
  if (fs::is_directory(src)) return src.string();
  return "samples/300W-LP";
}

std::string ReadFirstLine(const std::string& path, const std::string& key = "") {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (key.empty()) return line;
    if (line.rfind(key, 0) == 0) {
      auto c = line.find(':');
      return c == std::string::npos ? line : line.substr(line.find_first_not_of(" \t", c + 1));
    }
  }
  return "";
}

std::string LoadAverage() {
  std::istringstream in(ReadFirstLine("/proc/loadavg"));
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "?" : a + " " + b + " " + c;
}

// The device (CUDA) must finish its queued work before a clock is read.
void Sync(const c10::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Sample {
  const io::Item* item;
  std::string path;
};

model::FaceModel MakeModel(const std::string& preset, const std::string& file, const c10::Device& device) {
  if (!file.empty()) return model::FaceModel::Load(file, device);
  auto c = model::Preset(preset);
  auto tmpl = render::DefaultTemplate(c.uv_rows, c.uv_cols);
  c.regions = tmpl.topology.regions;  // as `model init` does
  auto m = model::FaceModel::Create(c, tmpl, 0);
  m.to(device);
  return m;
}

// One timed pass: the whole fit of one batch, stage by stage.
struct Pass {
  double total = 0;
  double stage[6] = {0, 0, 0, 0, 0, 0};  // kBatchStages
  fit::FitTiming fit;                    // this pass's share of the fitter's timing
  int64_t iterations = 0, evaluations = 0;
  double iterations_per_image = 0;  // mean over the batch's images, all stages
};

fit::FitTiming Minus(const fit::FitTiming& a, const fit::FitTiming& b) {
  fit::FitTiming d;
  d.encode = a.encode - b.encode;
  d.objective = a.objective - b.objective;
  d.optimise = a.optimise - b.optimise;
  d.finish = a.finish - b.finish;
  d.decode = a.decode - b.decode;
  d.render = a.render - b.render;
  d.losses = a.losses - b.losses;
  d.backward = a.backward - b.backward;
  d.objective_calls = a.objective_calls - b.objective_calls;
  d.iterations = a.iterations - b.iterations;
  return d;
}

// The decoder heads a fit iteration at the fit's defaults runs (the true heads alone for I(S, A)).
model::Heads FitHeads() { return fit::DecoderHeads(fit::FitOptions().weights); }

// The networks' counted work at batch B: E forward, then D_S and D_A forward and backward to
// the latents (weights frozen, as in a fit iteration). Returns the networks and the GEMMs of
// one fit iteration (D_S, D_A forward + backward) for the sgemm replay.
std::vector<NetworkFlops> CountNetworks(const model::FaceModel& m, int B, std::vector<CountedOp>& iteration_gemms) {
  const auto& c = m.config();
  const auto device = m.device();
  torch::manual_seed(0);
  auto frozen = m;  // shares the modules: the weights stay frozen, as every Fitter leaves them
  for (auto& p : frozen.parameters()) p.requires_grad_(false);
  std::vector<NetworkFlops> out;
  auto record = [&](const std::string& name, const std::vector<CountedOp>& ops, size_t from) {
    NetworkFlops n;
    n.name = name;
    for (size_t i = from; i < ops.size(); ++i) {
      n.flops += ops[i].flops;
      n.layers.emplace_back(ops[i].op + " " + ops[i].shapes, ops[i].flops);
    }
    out.push_back(std::move(n));
  };
  {
    torch::NoGradGuard ng;
    FlopCounter counter;
    m.Encode(torch::rand({B, 3, c.image_size, c.image_size}, torch::TensorOptions().device(device)));
    record("encoder_forward", counter.ops(), 0);
  }
  for (const bool shape : {true, false}) {
    auto f = torch::randn({B, shape ? c.latent_shape : c.latent_albedo}, torch::TensorOptions().device(device))
                 .requires_grad_(true);
    FlopCounter counter;
    auto maps = shape ? m.DecodeShape(f, FitHeads()) : m.DecodeAlbedo(f, FitHeads());
    const size_t forward_ops = counter.ops().size();
    maps.value.sum().backward();
    const auto ops = counter.ops();
    record(shape ? "shape_forward" : "albedo_forward", std::vector<CountedOp>(ops.begin(), ops.begin() + forward_ops), 0);
    record(shape ? "shape_backward" : "albedo_backward", ops, forward_ops);
    iteration_gemms.insert(iteration_gemms.end(), ops.begin(), ops.end());
  }
  return out;
}

// This machine's sgemm time for `gemms`: each replayed as one at::mm of its GEMM shape
// (float32, the model's device, BLAS on `threads` threads), median of 3 after a warm-up.
double GemmSeconds(const std::vector<CountedOp>& gemms, const c10::Device& device, int threads) {
  // The BLAS runs single-threaded inside ATen's parallelism (env::ConfigureThreads); for the
  // reference it gets the run's threads, and is set back to 1 after.
  env::SetBlasThreads(threads);
  struct Back {
    ~Back() { env::SetBlasThreads(1); }
  } back;
  std::map<std::array<int64_t, 3>, std::pair<at::Tensor, at::Tensor>> operands;
  for (const auto& g : gemms) {
    if (g.gemm_m <= 0) continue;
    std::array<int64_t, 3> key{g.gemm_m, g.gemm_k, g.gemm_n};
    if (!operands.count(key)) {
      auto o = torch::TensorOptions().device(device);
      operands[key] = {torch::randn({g.gemm_m, g.gemm_k}, o), torch::randn({g.gemm_k, g.gemm_n}, o)};
    }
  }
  std::vector<double> times;
  for (int r = 0; r < 4; ++r) {
    Sync(device);
    const auto t0 = Clock::now();
    for (const auto& g : gemms) {
      if (g.gemm_m <= 0) continue;
      const auto& ab = operands.at({g.gemm_m, g.gemm_k, g.gemm_n});
      at::mm(ab.first, ab.second);
    }
    Sync(device);
    if (r > 0) times.push_back(Seconds(t0, Clock::now()));
  }
  return Median(times);
}

// Training steps (BenchOptions::train_steps) of a fresh copy of the preset's model (weights
// trainable, train mode) on a fixed random batch with ground truth (data loading is not timed).
std::vector<TrainRun> MeasureTraining(const model::FaceModel& base, const BenchOptions& o, int threads) {
  env::ConfigureThreads(threads);
  const auto device = base.device();
  const auto& c = base.config();
  auto tmpl = base.face_template();
  auto m = model::FaceModel::Create(c, tmpl, 1);
  m.to(device);
  m.train();
  const int64_t B = o.train_batch, S = c.image_size;
  torch::manual_seed(1);
  auto opt = torch::TensorOptions().device(device);
  train::Batch batch;
  batch.images = torch::rand({B, 3, S, S}, opt);
  batch.landmarks = torch::rand({B, 68, 2}, opt) * (0.5 * S) + 0.25 * S;
  batch.has_ground_truth = torch::ones({B}, opt);
  batch.shape_uv = tmpl.mean_shape.to(device).unsqueeze(0).repeat({B, 1, 1, 1});
  batch.albedo_uv = tmpl.mean_albedo.to(device).unsqueeze(0).repeat({B, 1, 1, 1});
  batch.M = m.normalisation().m_mean.to(device).view({1, 2, 4}).repeat({B, 1, 1});
  batch.L = m.normalisation().l_mean.to(device).view({1, 27}).repeat({B, 1});
  for (int64_t i = 0; i < B; ++i) batch.ids.push_back(std::to_string(i));
  train::TrainOptions to, encoder_to, decoders_to;
  encoder_to.train_parts = "encoder";
  decoders_to.train_parts = "decoders";
  // The encoder stage (--train-parts encoder) regresses latent targets and the decoder
  // stage (--train-parts decoders) decodes them: random codes here.
  train::Batch coded_batch = batch;
  coded_batch.code_shape = torch::randn({B, c.latent_shape}, opt);
  coded_batch.code_albedo = torch::randn({B, c.latent_albedo}, opt);
  auto decoder_parameters = m.shape_decoder_parameters();
  for (auto& p : m.albedo_decoder_parameters()) decoder_parameters.push_back(p);
  torch::optim::Adam adam(m.parameters(), torch::optim::AdamOptions(1e-4));
  torch::optim::Adam encoder_adam(m.encoder_parameters(), torch::optim::AdamOptions(1e-4));
  torch::optim::Adam decoders_adam(decoder_parameters, torch::optim::AdamOptions(1e-4));
  auto step = [&](train::Phase phase, const std::string& parts) {
    auto& optimiser = parts == "encoder" ? encoder_adam : parts == "decoders" ? decoders_adam : adam;
    optimiser.zero_grad();
    auto terms = parts == "encoder"    ? train::ComputeObjective(m, coded_batch, phase, encoder_to)
                 : parts == "decoders" ? train::ComputeObjective(m, coded_batch, phase, decoders_to)
                                       : train::ComputeObjective(m, batch, phase, to);
    terms.Mean().backward();
    optimiser.step();
  };
  // The decoders alone, forward + backward with the weights' gradients, at the same batch.
  auto reference = [&] {
    auto fs = torch::randn({B, c.latent_shape}, opt), fa = torch::randn({B, c.latent_albedo}, opt);
    std::vector<double> times;
    for (int r = 0; r < 3; ++r) {
      adam.zero_grad();
      Sync(device);
      const auto t0 = Clock::now();
      (m.DecodeShape(fs).value.sum() + m.DecodeAlbedo(fa).value.sum()).backward();
      Sync(device);
      if (r > 0) times.push_back(Seconds(t0, Clock::now()));
    }
    return Median(times);
  };
  const double ref = reference();
  std::vector<TrainRun> out;
  for (const std::string name : {"pretrain", "full", "encoder", "decoders"}) {
    const auto phase = name == "full" ? train::Phase::kFull : train::Phase::kPretrain;
    // "encoder" / "decoders": pre-training of that part alone (the encoder and decoder stages).
    const std::string parts = name == "encoder" || name == "decoders" ? name : "all";
    m.train(parts != "decoders", parts != "encoder");
    TrainRun tr;
    tr.phase = name;
    tr.threads = threads;
    tr.batch = static_cast<int>(B);
    tr.steps = o.train_steps;
    std::vector<CountedOp> gemms;
    {
      FlopCounter counter;  // also the warm-up step
      step(phase, parts);
      gemms = counter.ops();
    }
    for (const auto& g : gemms) tr.flops_per_step += g.flops;
    std::vector<double> times;
    for (int k = 0; k < o.train_steps; ++k) {
      Sync(device);
      const auto t0 = Clock::now();
      step(phase, parts);
      Sync(device);
      times.push_back(Seconds(t0, Clock::now()));
    }
    tr.seconds_per_step = Median(times);
    tr.steps_per_second = tr.seconds_per_step > 0 ? 1.0 / tr.seconds_per_step : 0;
    tr.images_per_second = tr.steps_per_second * static_cast<double>(B);
    tr.reference_seconds = ref;
    tr.ratio = ref > 0 ? tr.seconds_per_step / ref : 0;
    const double gemm_seconds = GemmSeconds(gemms, device, threads);
    tr.gemm_gflops = gemm_seconds > 0 ? tr.flops_per_step / gemm_seconds / 1e9 : 0;
    tr.achieved_gflops = tr.seconds_per_step > 0 ? tr.flops_per_step / tr.seconds_per_step / 1e9 : 0;
    tr.gemm_fraction = tr.gemm_gflops > 0 ? tr.achieved_gflops / tr.gemm_gflops : 0;
    log::Info("bench {} train {} step, batch {}, threads {}: {:.3f} s ({:.2f} images/s), {:.2f}x the decoders' "
              "forward + backward, {:.1f} GFLOP/s of sgemm's {:.1f}",
              c.preset, tr.phase, B, threads, tr.seconds_per_step, tr.images_per_second, tr.ratio, tr.achieved_gflops,
              tr.gemm_gflops);
    out.push_back(tr);
  }
  return out;
}

class Runner {
 public:
  Runner(const BenchOptions& o, model::FaceModel model, const io::Manifest& manifest, std::string manifest_path,
         std::vector<Sample> samples, const fs::path& scratch)
      : o_(o),
        model_(std::move(model)),
        manifest_(manifest),
        manifest_path_(std::move(manifest_path)),
        samples_(std::move(samples)),
        scratch_(scratch) {
    networks_ = CountNetworks(model_, o_.batch, iteration_gemms_);
    for (const auto& g : iteration_gemms_) flops_per_iteration_ += g.flops;
  }
  const std::vector<NetworkFlops>& networks() const { return networks_; }
  double flops_per_iteration() const { return flops_per_iteration_; }

  // The shard file as `facebatch fit` writes it (outputs all, f32), in a scratch directory.
  batch::ShardSetup ShardSetup(const fit::FitOptions& fo) const {
    batch::FitJobOptions jo;
    jo.model = o_.model.empty() ? (scratch_ / "fresh-preset-model").string() : o_.model;
    jo.manifest = manifest_path_;
    jo.fit = fo;
    jo.command = "facebatch bench";
    return batch::MakeShardSetup(jo, model_, manifest_, io::ShardSpec::Parse("0/1", 0));
  }
  std::unique_ptr<batch::ShardWriter> Writer(const batch::ShardSetup& setup, const std::string& tag) const {
    const fs::path out = scratch_ / fmt::format("shards-{}-{}", model_.config().preset, tag);
    fs::create_directories(out);
    return std::make_unique<batch::ShardWriter>(batch::MakeShardPaths(out.string(), io::ShardSpec::Parse("0/1", 0)),
                                                setup.header, setup.layout, o_.batch);
  }

  // The whole fit at the fit command's defaults (schedule, steps, early exit), `batches` batches.
  DefaultFitRun MeasureDefaults(int threads, int batches) {
    env::ConfigureThreads(threads);
    fit::FitOptions fo;  // the defaults of `facebatch fit`
    fit::Fitter fitter(model_, fo);
    const auto setup = ShardSetup(fo);
    auto writer = Writer(setup, "defaults");
    DefaultFitRun d;
    d.threads = threads;
    d.batches = batches;
    d.schedule = fo.schedule;
    for (int k = 0; k < batches; ++k) {
      const Pass p = RunPass(fitter, *writer, setup.layout);
      log::Info("bench {} default fit batch {}: {:.2f} s: encoder {:.2f}, optimise {:.2f} (decode {:.2f}, render {:.2f}, "
                "losses {:.2f}, backward {:.2f}; {} evaluations, {} iterations), finish {:.2f}",
                model_.config().preset, k, p.total, p.fit.encode, p.fit.optimise, p.fit.decode, p.fit.render,
                p.fit.losses, p.fit.backward, p.fit.objective_calls, p.fit.iterations, p.fit.finish);
      d.seconds += p.total;
      d.iterations_per_image += p.iterations_per_image / batches;
    }
    writer->Flush();
    d.images_per_second = d.seconds > 0 ? batches * o_.batch / d.seconds : 0;
    log::Info("bench {} at the fit defaults ({}), threads {}: {:.3f} images/s, {:.1f} iterations per image",
              model_.config().preset, d.schedule, threads, d.images_per_second, d.iterations_per_image);
    return d;
  }

  BenchRun Measure(int threads) {
    env::ConfigureThreads(threads);
    const auto device = model_.device();
    fit::FitOptions fo;
    // One stage of `iterations` joint iterations: the per-iteration costs below are those
    // of the fit's joint stage (the coarse-to-fine default adds the closed-form pose and
    // the appearance stage, whose iterations skip the shape decoder: docs/fit.md).
    fo.schedule = "joint";
    fo.steps = o_.iterations;
    fo.relative_tolerance = 0;  // no early exit: every image runs every iteration
    fo.synchronize_timing = true;
    fit::Fitter fitter(model_, fo);
    const auto setup = ShardSetup(fo);
    auto writer_ptr = Writer(setup, std::to_string(threads));
    auto& writer = *writer_ptr;

    {  // warm-up: allocator, thread pools, first-call set-up (one iteration)
      fit::FitOptions warm = fo;
      warm.steps = 1;
      fit::Fitter w(model_, warm);
      RunPass(w, writer, setup.layout);
    }
    std::vector<Pass> passes;
    for (int r = 0; r < o_.repeats; ++r) passes.push_back(RunPass(fitter, writer, setup.layout));
    writer.Flush();

    // The pass with the median total stands for the run (its stages add up to its total).
    std::vector<double> totals;
    for (const auto& p : passes) totals.push_back(p.total);
    const double med = Median(totals);
    const Pass* pick = &passes.front();
    for (const auto& p : passes)
      if (std::abs(p.total - med) < std::abs(pick->total - med)) pick = &p;

    BenchRun run;
    run.threads = threads;
    run.total_seconds = pick->total;
    run.images_per_second = o_.batch / pick->total;
    double sum = 0;
    for (int i = 0; i < 6; ++i) {
      run.batch_stages.push_back({kBatchStages[i], pick->stage[i]});
      sum += pick->stage[i];
    }
    run.other_seconds = std::max(0.0, pick->total - sum);
    const auto& t = pick->fit;
    const double evals = static_cast<double>(std::max<int64_t>(1, t.objective_calls));
    const double its = static_cast<double>(std::max<int64_t>(1, t.iterations));
    const double step = std::max(0.0, t.optimise - t.objective - t.backward) / its;
    const double per_it[5] = {t.decode / evals, t.render / evals, t.losses / evals, t.backward / its, step};
    for (int i = 0; i < 5; ++i) {
      run.iteration_stages.push_back({kIterationStages[i], per_it[i]});
      run.iteration_seconds += per_it[i];
    }
    run.overhead_fraction = run.iteration_seconds > 0 ? (per_it[1] + per_it[2] + per_it[4]) / run.iteration_seconds : 0;
    run.iterations = static_cast<int>(t.iterations);
    run.objective_evaluations = static_cast<int>(t.objective_calls);
    run.reference_seconds = Reference(device);
    run.ratio = run.reference_seconds > 0 ? run.iteration_seconds / run.reference_seconds : 0;
    const double gemm_seconds = GemmSeconds(iteration_gemms_, device, threads);
    run.gemm_gflops = gemm_seconds > 0 ? flops_per_iteration_ / gemm_seconds / 1e9 : 0;
    run.achieved_gflops = run.iteration_seconds > 0 ? flops_per_iteration_ / run.iteration_seconds / 1e9 : 0;
    run.reference_gflops = run.reference_seconds > 0 ? flops_per_iteration_ / run.reference_seconds / 1e9 : 0;
    run.gemm_fraction = run.gemm_gflops > 0 ? run.achieved_gflops / run.gemm_gflops : 0;
    log::Info("bench {} threads {}: {:.3f} s per batch of {} ({:.2f} images/s), fit iteration {:.1f} ms, "
              "decoders fwd+bwd {:.1f} ms, ratio {:.2f}",
              model_.config().preset, threads, run.total_seconds, o_.batch, run.images_per_second,
              run.iteration_seconds * 1e3, run.reference_seconds * 1e3, run.ratio);
    return run;
  }

 private:
  Pass RunPass(fit::Fitter& fitter, batch::ShardWriter& writer, const batch::ShardLayout& layout) {
    const auto device = model_.device();
    const int S = model_.config().image_size;
    const int B = o_.batch;
    Pass p;
    Sync(device);
    const auto t_start = Clock::now();
    std::vector<io::Crop> crops(B);
    auto images = torch::empty({B, 3, S, S}, torch::kFloat32);
    std::vector<std::vector<std::array<double, 2>>> points(B);
    for (int b = 0; b < B; ++b) {
      const auto& s = samples_[static_cast<size_t>(b) % samples_.size()];
      const auto t0 = Clock::now();
      cv::Mat bgr = io::LoadImageBgr(s.path);
      const auto t1 = Clock::now();
      crops[b] = io::CropFace(bgr, s.item->landmarks, S);
      cv::Mat rgb = io::BgrToLinearRgb(crops[b].image);
      images[b].copy_(torch::from_blob(rgb.data, {S, S, 3}, torch::kFloat32).permute({2, 0, 1}));
      for (const auto& q : crops[b].landmarks.points) points[b].push_back({q.x, q.y});
      const auto t2 = Clock::now();
      p.stage[0] += Seconds(t0, t1);
      p.stage[1] += Seconds(t1, t2);
    }
    {
      const auto t0 = Clock::now();
      auto [lm, lw] = fit::PackLandmarks(points, S, S);
      const auto before = fitter.timing();
      p.stage[1] += Seconds(t0, Clock::now());
      auto r = fitter.Fit(images, lm, lw);
      p.fit = Minus(fitter.timing(), before);
      for (const auto& summary : r.summaries) p.iterations_per_image += summary.iterations / static_cast<double>(B);
      p.stage[2] = p.fit.encode;
      p.stage[3] = p.fit.optimise;
      p.stage[4] = p.fit.finish;
      const auto t3 = Clock::now();
      auto pose = fit::PoseFromProjection(r.projection).cpu();
      for (int b = 0; b < B; ++b) {
        const auto& s = samples_[static_cast<size_t>(b) % samples_.size()];
        const int64_t position = static_cast<int64_t>(pass_count_) * B + b;
        auto rec = batch::MakeFitRecord(manifest_.header, batch::FittedItem{s.item, position, &crops[b]}, r, pose, b, layout);
        rec.id = fmt::format("{}#{}", s.item->id, position);  // unique ids in the scratch shard
        rec.strings["/images/id"] = rec.id;
        writer.Add(std::move(rec));  // the B-th record closes a part file (fsync + rename)
      }
      p.stage[5] = Seconds(t3, Clock::now());
    }
    ++pass_count_;
    p.total = Seconds(t_start, Clock::now());
    return p;
  }

 public:
  // The inference levers one by one (BenchOptions::levers), cumulative, at `threads`; then the
  // fit at its defaults with every lever off and with the default levers, alternating.
  LeverReport MeasureLevers(int threads) {
    env::ConfigureThreads(threads);
    const auto saved = model_.inference_options();
    struct Setting {
      const char* name;
      bool skip, fold, phases, channels_last;
    };
    static const Setting kSettings[] = {{"none", false, false, false, false},
                                        {"+ proxy heads skipped", true, false, false, false},
                                        {"+ BatchNorm folded", true, true, false, false},
                                        {"+ transposed as phases", true, true, true, false},
                                        {"+ channels-last", true, true, true, true}};
    auto options = [](const Setting& s) {
      model::InferenceOptions io;
      io.skip_unused_proxy_heads = s.skip, io.fold_batchnorm = s.fold, io.channels_last = s.channels_last;
      io.transposed_as_phases = s.phases;
      return io;
    };
    LeverReport lr;
    lr.threads = threads;
    for (const auto& s : kSettings) {
      model_.SetInferenceOptions(options(s));
      LeverStep st;
      st.name = s.name;
      st.skip_unused_proxy_heads = s.skip, st.fold_batchnorm = s.fold, st.channels_last = s.channels_last;
      st.transposed_as_phases = s.phases;
      st.decoders_seconds = Reference(model_.device());
      st.fit_iteration_seconds = Measure(threads).iteration_seconds;
      st.speedup = st.decoders_seconds > 0 && !lr.steps.empty() ? lr.steps.front().decoders_seconds / st.decoders_seconds
                                                                 : 1.0;
      st.fit_iteration_speedup = st.fit_iteration_seconds > 0 && !lr.steps.empty()
                                     ? lr.steps.front().fit_iteration_seconds / st.fit_iteration_seconds
                                     : 1.0;
      log::Info("bench {} lever {}: decoders forward + backward {:.1f} ms ({:.2f}x), fit iteration {:.1f} ms ({:.2f}x)",
                model_.config().preset, st.name, st.decoders_seconds * 1e3, st.speedup, st.fit_iteration_seconds * 1e3,
                st.fit_iteration_speedup);
      lr.steps.push_back(st);
    }
    if (o_.default_fit_batches > 0) {
      // The fit at its defaults with every lever off and with the default levers, batch by batch in
      // alternating order (off, on, on, off, ...): machine drift falls on both alike.
      fit::FitOptions fo;
      fit::Fitter fitter(model_, fo);
      const auto setup = ShardSetup(fo);
      auto writer_off = Writer(setup, "levers-off"), writer_on = Writer(setup, "levers-on");
      DefaultFitRun* runs[2] = {&lr.defaults_without, &lr.defaults_with};
      for (auto* d : runs) d->threads = threads, d->batches = o_.default_fit_batches, d->schedule = fo.schedule;
      for (int k = 0; k < o_.default_fit_batches; ++k) {
        for (int j = 0; j < 2; ++j) {
          const int on = (k % 2 == 0) ? j : 1 - j;
          model_.SetInferenceOptions(on ? model::InferenceOptions{} : options(kSettings[0]));
          const Pass p = RunPass(fitter, on ? *writer_on : *writer_off, setup.layout);
          runs[on]->seconds += p.total;
          runs[on]->iterations_per_image += p.iterations_per_image / o_.default_fit_batches;
        }
      }
      writer_off->Flush();
      writer_on->Flush();
      for (auto* d : runs) d->images_per_second = d->seconds > 0 ? d->batches * o_.batch / d->seconds : 0;
      lr.default_fit_speedup = lr.defaults_without.images_per_second > 0
                                   ? lr.defaults_with.images_per_second / lr.defaults_without.images_per_second
                                   : 0;
      log::Info("bench {} at the fit defaults, levers off / on, alternating, {} batch(es) each: {:.3f} / {:.3f} images/s "
                "({:.2f}x)",
                model_.config().preset, o_.default_fit_batches, lr.defaults_without.images_per_second,
                lr.defaults_with.images_per_second, lr.default_fit_speedup);
    }
    model_.SetInferenceOptions(saved);
    return lr;
  }

 private:
  // The decoders' forward + backward alone (to the latents, the heads a default fit runs),
  // at the same batch: median of 3 (or --repeats) after a warm-up.
  double Reference(const c10::Device& device) {
    const auto& c = model_.config();
    torch::manual_seed(0);
    auto fs = torch::randn({o_.batch, c.latent_shape}, torch::TensorOptions().device(device)).requires_grad_(true);
    auto fa = torch::randn({o_.batch, c.latent_albedo}, torch::TensorOptions().device(device)).requires_grad_(true);
    std::vector<double> times;
    for (int r = 0; r < std::max(3, o_.repeats) + 1; ++r) {
      Sync(device);
      const auto t0 = Clock::now();
      auto loss = model_.DecodeShape(fs, FitHeads()).value.sum() + model_.DecodeAlbedo(fa, FitHeads()).value.sum();
      loss.backward();
      Sync(device);
      const double s = Seconds(t0, Clock::now());
      fs.mutable_grad().zero_();
      fa.mutable_grad().zero_();
      if (r > 0) times.push_back(s);
    }
    return Median(times);
  }

  const BenchOptions& o_;
  model::FaceModel model_;
  const io::Manifest& manifest_;
  std::string manifest_path_;
  std::vector<Sample> samples_;
  fs::path scratch_;
  int pass_count_ = 0;
  std::vector<NetworkFlops> networks_;
  std::vector<CountedOp> iteration_gemms_;
  double flops_per_iteration_ = 0;
};

nlohmann::json StagesJson(const std::vector<Stage>& stages) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : stages) j[s.name] = s.seconds;
  return j;
}

std::string Ms(double s) { return s >= 1.0 ? fmt::format("{:.2f} s", s) : fmt::format("{:.1f} ms", s * 1e3); }

}  // namespace

void BenchOptions::Check() const {
  if (model.empty() && preset != "demo" && preset != "paper" && preset != "both")
    throw UsageError("bench: --preset must be demo, paper or both, got '" + preset + "'");
  try {
    c10::Device d(device);
    (void)d;
  } catch (const std::exception&) {
    throw UsageError("bench: bad --device '" + device + "' (expected cpu, cuda or cuda:K)");
  }
  if (batch < 1) throw UsageError("bench: --batch must be >= 1");
  if (iterations < 1) throw UsageError("bench: --iterations must be >= 1");
  if (repeats < 1) throw UsageError("bench: --repeats must be >= 1");
  if (default_fit_batches < 0) throw UsageError("bench: --default-fit-batches must be >= 0");
  if (train_steps < 0) throw UsageError("bench: --train-steps must be >= 0");
  if (train_batch < 1) throw UsageError("bench: --train-batch must be >= 1");
  if (levers != 0 && levers != 1) throw UsageError("bench: --levers must be 0 or 1");
  ParseThreadList(threads, 1);
}

std::vector<int> ParseThreadList(const std::string& text, int cores) {
  std::vector<int> out;
  if (text == "max") {
    for (int t = 1; t < cores; t *= 2) out.push_back(t);
    out.push_back(std::max(1, cores));
    return out;
  }
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(begin, end - begin);
    begin = end + 1;
    size_t used = 0;
    int t = 0;
    try {
      t = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || part.empty() || t < 1)
      throw UsageError("bench: --threads must be max or a comma list of counts >= 1, got '" + text + "'");
    out.push_back(t);
  }
  if (out.empty()) throw UsageError("bench: --threads is empty");
  return out;
}

BenchReport RunBench(const BenchOptions& o) {
  o.Check();
  const c10::Device device(o.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw Error("bench: --device " + o.device + " but CUDA is not available (a CPU-only LibTorch, or no GPU)");
  model::InstallTorchThreadHook();
  const int cores = env::AvailableCores();
  const auto thread_list = ParseThreadList(o.threads, cores);

  BenchReport report;
  const std::string cpu = ReadFirstLine("/proc/cpuinfo", "model name");
  const std::string load_before = LoadAverage();

  ScratchDir scratch;
  io::IndexOptions io;
  io.root = o.samples.empty() ? DefaultSamples() : o.samples;
  io.out = (scratch.path / "samples.jsonl").string();
  io.progress = "none";
  io.threads = 1;
  if (!fs::is_directory(io.root)) throw InputError(io.root, "the sample corpus directory does not exist (--samples)");
  io::RunIndex(io);
  const auto manifest = io::ReadManifest(io.out);
  std::vector<Sample> samples;
  for (const auto& it : manifest.items) {
    if (it.ok() && !it.landmarks.points.empty())
      samples.push_back({&it, (fs::path(manifest.header.root) / it.image).string()});
  }
  if (samples.empty()) throw InputError(io.root, "no usable image with landmarks in the sample corpus");

  std::vector<std::string> presets;
  if (!o.model.empty()) presets = {""};
  else if (o.preset == "both") presets = {"demo", "paper"};
  else presets = {o.preset};
  for (const auto& preset : presets) {
    auto model = MakeModel(preset, o.model, device);
    PresetReport pr;
    pr.preset = model.config().preset;
    pr.model = o.model;
    pr.device = device.str();
    pr.batch = o.batch;
    pr.iterations = o.iterations;
    pr.image_size = model.config().image_size;
    pr.uv_rows = model.config().uv_rows;
    pr.uv_cols = model.config().uv_cols;
    pr.parameters = model.CountParameters().total();
    log::Info("bench: preset {} ({} parameters, {} x {} UV, {} px), {}, batch {}, {} iterations, threads {}",
              pr.preset, pr.parameters, pr.uv_rows, pr.uv_cols, pr.image_size, pr.device, o.batch, o.iterations,
              o.threads);
    Runner runner(o, model, manifest, io.out, samples, scratch.path);
    pr.networks = runner.networks();
    pr.flops_per_iteration = runner.flops_per_iteration();
    for (int t : thread_list) pr.runs.push_back(runner.Measure(t));
    const int most = *std::max_element(thread_list.begin(), thread_list.end());
    if (o.default_fit_batches > 0) pr.defaults = runner.MeasureDefaults(most, o.default_fit_batches);
    if (o.levers) pr.levers = runner.MeasureLevers(most);
    if (o.train_steps > 0) pr.train = MeasureTraining(model, o, most);
    pr.peak_rss_mib = batch::PeakRssMiB();
    report.presets.push_back(std::move(pr));
  }
  report.machine = fmt::format("{} ({} cores available); load average {} before, {} after; LibTorch {}; facebatch {}; allocator: {}",
                               cpu.empty() ? "unknown CPU" : cpu, cores, load_before, LoadAverage(), TORCH_VERSION,
                               FACEBATCH_VERSION, env::CurrentAllocatorTuning().description);
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << report.ToJson() << "\n";
    if (!out) throw InputError(o.json, "cannot write the JSON report");
  }
  return report;
}

std::string BenchReport::ToJson() const {
  nlohmann::json j;
  j["format"] = "facebatch-bench";
  j["version"] = 1;
  j["machine"] = machine;
  j["presets"] = nlohmann::json::array();
  for (const auto& p : presets) {
    nlohmann::json pj{{"preset", p.preset},         {"model", p.model},         {"device", p.device},
                      {"batch", p.batch},           {"iterations", p.iterations}, {"image_size", p.image_size},
                      {"uv_rows", p.uv_rows},       {"uv_cols", p.uv_cols},     {"parameters", p.parameters},
                      {"peak_rss_mib", p.peak_rss_mib}};
    pj["runs"] = nlohmann::json::array();
    const double base = p.runs.empty() ? 0 : p.runs.front().images_per_second;
    for (const auto& r : p.runs) {
      pj["runs"].push_back({{"threads", r.threads},
                            {"total_seconds", r.total_seconds},
                            {"images_per_second", r.images_per_second},
                            {"speedup", base > 0 ? r.images_per_second / base : 0.0},
                            {"batch_stages", StagesJson(r.batch_stages)},
                            {"other_seconds", r.other_seconds},
                            {"iteration_stages", StagesJson(r.iteration_stages)},
                            {"iteration_seconds", r.iteration_seconds},
                            {"reference_seconds", r.reference_seconds},
                            {"ratio", r.ratio},
                            {"overhead_fraction", r.overhead_fraction},
                            {"iterations", r.iterations},
                            {"objective_evaluations", r.objective_evaluations},
                            {"flops_per_iteration", p.flops_per_iteration},
                            {"achieved_gflops", r.achieved_gflops},
                            {"gemm_gflops", r.gemm_gflops},
                            {"gemm_fraction", r.gemm_fraction},
                            {"reference_gflops", r.reference_gflops}});
    }
    pj["flops_per_iteration"] = p.flops_per_iteration;
    pj["networks"] = nlohmann::json::array();
    for (const auto& n : p.networks) {
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& [what, f] : n.layers) layers.push_back({{"op", what}, {"flops", f}});
      pj["networks"].push_back({{"name", n.name}, {"flops", n.flops}, {"layers", layers}});
    }
    if (p.defaults.batches > 0) {
      const auto& d = p.defaults;
      pj["default_fit"] = {{"threads", d.threads},
                           {"batches", d.batches},
                           {"schedule", d.schedule},
                           {"seconds", d.seconds},
                           {"images_per_second", d.images_per_second},
                           {"iterations_per_image", d.iterations_per_image}};
    }
    if (p.levers.threads > 0) {
      nlohmann::json steps = nlohmann::json::array();
      for (const auto& st : p.levers.steps)
        steps.push_back({{"name", st.name},
                         {"skip_unused_proxy_heads", st.skip_unused_proxy_heads},
                         {"fold_batchnorm", st.fold_batchnorm},
                         {"transposed_as_phases", st.transposed_as_phases},
                         {"channels_last", st.channels_last},
                         {"decoders_seconds", st.decoders_seconds},
                         {"speedup", st.speedup},
                         {"fit_iteration_seconds", st.fit_iteration_seconds},
                         {"fit_iteration_speedup", st.fit_iteration_speedup}});
      pj["levers"] = {{"threads", p.levers.threads}, {"steps", steps}};
      if (p.levers.defaults_without.batches > 0) {
        for (const auto& [key, d] : {std::pair{"default_fit_without", &p.levers.defaults_without},
                                     std::pair{"default_fit_with", &p.levers.defaults_with}})
          pj["levers"][key] = {{"batches", d->batches},
                               {"seconds", d->seconds},
                               {"images_per_second", d->images_per_second},
                               {"iterations_per_image", d->iterations_per_image}};
        pj["levers"]["default_fit_speedup"] = p.levers.default_fit_speedup;
      }
    }
    pj["train"] = nlohmann::json::array();
    for (const auto& t : p.train)
      pj["train"].push_back({{"phase", t.phase},
                             {"threads", t.threads},
                             {"batch", t.batch},
                             {"steps", t.steps},
                             {"seconds_per_step", t.seconds_per_step},
                             {"steps_per_second", t.steps_per_second},
                             {"images_per_second", t.images_per_second},
                             {"reference_seconds", t.reference_seconds},
                             {"ratio", t.ratio},
                             {"flops_per_step", t.flops_per_step},
                             {"achieved_gflops", t.achieved_gflops},
                             {"gemm_gflops", t.gemm_gflops},
                             {"gemm_fraction", t.gemm_fraction}});
    j["presets"].push_back(pj);
  }
  return j.dump(2);
}

std::string BenchReport::ToTable() const {
  std::string s = "machine: " + machine + "\n";
  for (const auto& p : presets) {
    s += fmt::format("\n== preset {}{}: {} parameters, {} x {} UV, {} px images; {}, batch {}, {} iterations\n",
                     p.preset, p.model.empty() ? " (fresh, untrained)" : " (" + p.model + ")", p.parameters,
                     p.uv_rows, p.uv_cols, p.image_size, p.device, p.batch, p.iterations);
    if (p.runs.empty()) continue;
    const auto& r = p.runs.back();  // the most threads
    s += fmt::format("per-stage breakdown at {} thread(s) (one batch, wall time):\n", r.threads);
    s += fmt::format("  {:<34} {:>10} {:>10} {:>7}\n", "stage", "per batch", "per image", "share");
    auto row = [&](const std::string& name, double sec) {
      s += fmt::format("  {:<34} {:>10} {:>10} {:>6.1f}%\n", name, Ms(sec), Ms(sec / p.batch),
                       100.0 * sec / r.total_seconds);
    };
    static const char* labels[] = {"image decode", "crop", "encoder", "fit iterations (all)",
                                   "final decode + render + metrics", "HDF5 write (shard writer)"};
    for (size_t i = 0; i < r.batch_stages.size(); ++i) {
      row(labels[i], r.batch_stages[i].seconds);
      if (i == 3) {
        static const char* il[] = {"decode maps (D_S, D_A)", "render I(S, A)", "losses (eqs. 4, 7)", "backward",
                                   "optimiser step"};
        for (size_t k = 0; k < r.iteration_stages.size(); ++k)
          s += fmt::format("    {:<32} {:>10} per iteration\n", il[k], Ms(r.iteration_stages[k].seconds));
      }
    }
    row("other (bookkeeping)", r.other_seconds);
    row("total (measured)", r.total_seconds);
    s += fmt::format("throughput: {:.3f} images/s ({} iterations per image)\n", r.images_per_second, r.iterations);
    s += fmt::format("fit iteration {} vs the decoders' forward + backward alone {} at batch {}: ratio {:.2f}\n",
                     Ms(r.iteration_seconds), Ms(r.reference_seconds), p.batch, r.ratio);
    s += fmt::format("render + losses + optimiser step: {:.1f}% of a fit iteration (the rest is D_S, D_A and backward)\n",
                     100.0 * r.overhead_fraction);
    s += "counted work (convolutions and matrix products; bench/FlopCounter.h), per batch:\n";
    for (const auto& n : p.networks)
      s += fmt::format("  {:<18} {:>9.3f} GFLOP in {} layer calls\n", n.name, n.flops / 1e9, n.layers.size());
    s += fmt::format("fit iteration (D_S, D_A forward + backward to the latents): {:.3f} GFLOP; achieved {:.1f} GFLOP/s, "
                     "this machine's sgemm on the same GEMMs {:.1f} GFLOP/s: fraction {:.2f} (decoders alone {:.1f} GFLOP/s)\n",
                     p.flops_per_iteration / 1e9, r.achieved_gflops, r.gemm_gflops, r.gemm_fraction, r.reference_gflops);
    s += "thread scaling:\n";
    s += fmt::format("  {:>7} {:>10} {:>8} {:>12} {:>6} {:>9} {:>9} {:>9}\n", "threads", "images/s", "speedup",
                     "iteration", "ratio", "GFLOP/s", "sgemm", "fraction");
    const double base = p.runs.front().images_per_second;
    for (const auto& q : p.runs)
      s += fmt::format("  {:>7} {:>10.3f} {:>7.2f}x {:>12} {:>6.2f} {:>9.1f} {:>9.1f} {:>9.2f}\n", q.threads,
                       q.images_per_second, base > 0 ? q.images_per_second / base : 0.0, Ms(q.iteration_seconds), q.ratio,
                       q.achieved_gflops, q.gemm_gflops, q.gemm_fraction);
    if (p.defaults.batches > 0)
      s += fmt::format("fit at the `facebatch fit` defaults ({}, early exit), {} thread(s), {} batch(es): {:.3f} images/s, "
                       "{:.1f} iterations per image\n",
                       p.defaults.schedule, p.defaults.threads, p.defaults.batches, p.defaults.images_per_second,
                       p.defaults.iterations_per_image);
    if (p.levers.threads > 0) {
      s += fmt::format("inference levers (model/Inference.h), cumulative, {} thread(s): decoders' forward + backward\n",
                       p.levers.threads);
      for (const auto& st : p.levers.steps)
        s += fmt::format("  {:<24} {:>10} {:>6.2f}x   fit iteration {:>10} {:>6.2f}x\n", st.name, Ms(st.decoders_seconds),
                         st.speedup, Ms(st.fit_iteration_seconds), st.fit_iteration_speedup);
      if (p.levers.defaults_without.batches > 0)
        s += fmt::format("  fit at the defaults, {} batch(es) each, alternating: {:.3f} images/s with every lever off, "
                         "{:.3f} with the default levers: {:.2f}x\n",
                         p.levers.defaults_without.batches, p.levers.defaults_without.images_per_second,
                         p.levers.defaults_with.images_per_second, p.levers.default_fit_speedup);
    }
    for (const auto& t : p.train)
      s += fmt::format("train step ({}, batch {}, {} thread(s)): {} = {:.3f} steps/s, {:.2f} images/s; {:.2f}x the decoders' "
                       "forward + backward with weight gradients ({}); {:.2f} GFLOP counted, {:.1f} GFLOP/s of sgemm's "
                       "{:.1f}: fraction {:.2f}\n",
                       t.phase, t.batch, t.threads, Ms(t.seconds_per_step), t.steps_per_second, t.images_per_second,
                       t.ratio, Ms(t.reference_seconds), t.flops_per_step / 1e9, t.achieved_gflops, t.gemm_gflops,
                       t.gemm_fraction);
    s += fmt::format("peak RSS (process, after this preset): {:.0f} MiB\n", p.peak_rss_mib);
  }
  return s;
}

}  // namespace facebatch::bench
