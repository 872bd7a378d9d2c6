#include "batch/FitJob.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <condition_variable>
#include <signal.h>
#include <sys/resource.h>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "batch/ShardWriter.h"
#include "core/Env.h"
#include "core/Disk.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "facebatch/Version.h"
#include "io/Crop.h"
#include "io/Image.h"
#include "io/Manifest.h"
#include "io/Shard.h"
#include "model/FaceModel.h"

namespace facebatch::batch {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_stop{false};
void OnStopSignal(int) { g_stop.store(true); }

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  void Push(T value) {
    std::unique_lock<std::mutex> lk(m_);
    not_full_.wait(lk, [&] { return q_.size() < capacity_ || closed_; });
    q_.push_back(std::move(value));
    not_empty_.notify_one();
  }
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lk(m_);
    not_empty_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }
  void Close() {
    std::lock_guard<std::mutex> lk(m_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex m_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> q_;
  bool closed_ = false;
};

struct Loaded {
  const io::Item* item = nullptr;
  int64_t position = 0;
  io::Crop crop;
  std::string failure_code, failure;
};

struct WorkBatch {
  std::vector<Loaded> items;
};

std::vector<float> ToVector(const at::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::string SourcePath(const io::ManifestHeader& h, const io::Item& item) {
  return h.root.empty() ? item.image : (fs::path(h.root) / item.image).string();
}

ImageRecord FailedRecord(const io::ManifestHeader& h, const Loaded& l, const std::string& code, const std::string& msg) {
  ImageRecord r;
  r.id = l.item->id;
  r.position = l.position;
  r.strings["/images/id"] = l.item->id;
  r.strings["/images/source"] = SourcePath(h, *l.item);
  r.strings["/images/status"] = "failed";
  r.strings["/images/reason_code"] = code;
  r.strings["/images/reason"] = msg;
  r.strings["/fit/termination"] = "";
  return r;
}

std::vector<c10::Device> ParseDevices(const FitJobOptions& o) {
  std::vector<c10::Device> out;
  if (o.devices.empty()) {
    c10::Device d(o.device);
    if (d.is_cuda() && !d.has_index()) {
      // Several GPUs visible to several tasks of a node: task SLURM_LOCALID takes GPU LOCALID mod count.
      if (auto k = env::SlurmLocalDevice(static_cast<int>(torch::cuda::device_count()))) {
        d = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(*k));
        log::Info("--device cuda with {} visible GPUs: SLURM_LOCALID picks {}", torch::cuda::device_count(), d.str());
      }
    }
    for (int i = 0; i < (d.is_cpu() ? std::max(1, o.workers) : 1); ++i) out.push_back(d);  // 0: auto, later
    return out;
  }
  if (o.devices == "all") {
    const int n = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < n; ++i) out.emplace_back(c10::kCUDA, static_cast<c10::DeviceIndex>(i));
    if (out.empty()) out.emplace_back(c10::kCPU);
    return out;
  }
  std::stringstream ss(o.devices);
  std::string part;
  while (std::getline(ss, part, ',')) out.emplace_back(part);
  return out;
}

}  // namespace

int AutoCpuWorkers(const model::ModelConfig& config, int threads, size_t batches) {
  // Measured with the default model at the fit's defaults (docs/fitjob.md "Pipeline and
  // devices"): the demo preset's small convolutions gain little from a second thread (1.16x
  // from 1 to 2, issue 16), so one single-threaded worker per core fits more images per second
  // (1.26-1.35x on 2 cores); the paper preset scales (2.04x) and costs 2.4 GB a copy, so models
  // larger than the demo preset get one worker with every thread.
  const auto demo = model::Preset("demo");
  if (static_cast<int64_t>(config.uv_rows) * config.uv_cols > static_cast<int64_t>(demo.uv_rows) * demo.uv_cols)
    return 1;
  return std::max(1, std::min(threads, static_cast<int>(std::max<size_t>(1, batches))));
}

void InstallStopSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}
bool StopRequested() { return g_stop.load(); }
void ResetStopRequest() { g_stop.store(false); }

void FitJobOptions::Check() const {
  if (manifest.empty()) throw UsageError("fit: --manifest is required");
  if (model.empty()) throw UsageError("fit: --model is required");
  if (out.empty()) throw UsageError("fit: --out is required");
  io::ShardSpec::Parse(shard, num_shards);
  if (batch < 1) throw UsageError("fit: --batch must be >= 1");
  if (workers < 0) throw UsageError("fit: --workers must be >= 0 (0: auto)");
  if (part_size < 1) throw UsageError("fit: --part-size must be >= 1");
  if (threads < 0) throw UsageError("fit: --threads must be >= 0");
  if (dtype != "f32" && dtype != "f16") throw UsageError("fit: --dtype must be f32 or f16, got '" + dtype + "'");
  ParseOutputs(outputs);
  ParseProgressMode(progress);
  try {
    c10::Device d(device);
    (void)d;
  } catch (const std::exception&) {
    throw UsageError("fit: bad --device '" + device + "' (expected cpu, cuda or cuda:K)");
  }
  if (!devices.empty() && devices != "all") {
    std::stringstream ss(devices);
    std::string part;
    while (std::getline(ss, part, ',')) {
      try {
        c10::Device d(part);
        (void)d;
      } catch (const std::exception&) {
        throw UsageError("fit: bad device '" + part + "' in --devices");
      }
    }
  }
  fit.Check();
}

int FitJobSummary::ExitCode() const {
  if (interrupted || !complete) return kExitIncomplete;
  auto it = counts.find("failed");
  return it != counts.end() && it->second > 0 ? kExitSomeFailed : kExitOk;
}

std::string FitJobSummary::ToString() const {
  std::string c;
  for (const auto& [k, v] : counts) c += fmt::format("{}{} {}", c.empty() ? "" : ", ", k, v);
  return fmt::format("shard {}: {} images, {} done before, {} written now ({} failed); {}; {:.1f} s, fitter busy {:.0f}%{}",
                     shard, total, skipped, processed, failed,
                     interrupted ? "INTERRUPTED (rerun to resume)" : complete ? "complete" : "incomplete", seconds,
                     busy_fraction * 100, complete ? " -> " + shard_file + " (" + c + ")" : "");
}

ShardSetup MakeShardSetup(const FitJobOptions& o, const model::FaceModel& main_model, const io::Manifest& manifest,
                          const io::ShardSpec& spec) {
  const auto& cfg = main_model.config();
  const auto& topo = main_model.face_template().topology;
  const int S = cfg.image_size;
  ShardSetup setup;
  auto& header = setup.header;
  header.string_attrs["facebatch_version"] = FACEBATCH_VERSION;
  header.string_attrs["model_sha256"] = main_model.WeightsHash();
  header.string_attrs["model_path"] = fs::absolute(o.model).string();
  {
    const auto& p = main_model.provenance();
    nlohmann::json j{{"created", p.created},           {"facebatch_version", p.facebatch_version},
                     {"command", p.command},           {"training_data", p.training_data},
                     {"training_steps", p.training_steps}, {"parent_hash", p.parent_hash},
                     {"preset", cfg.preset}};
    header.string_attrs["model_provenance"] = j.dump();
  }
  header.string_attrs["model_config"] = cfg.ToJson();
  header.string_attrs["config"] = o.config_text;
  header.string_attrs["command"] = o.command;
  header.string_attrs["shard"] = spec.ToString();
  header.int_attrs["shard_index"] = spec.index;
  header.int_attrs["shard_count"] = spec.count;
  header.int_attrs["image_size"] = S;
  header.int_attrs["refine_steps"] = o.fit.refine ? o.fit.refine_steps : 0;  // schemas/shard.md
  header.string_attrs["manifest_hash"] = manifest.header.items_hash;
  header.string_attrs["manifest_path"] = fs::absolute(o.manifest).string();
  {
    auto tri = topo.triangles.to(torch::kCPU, torch::kInt64).contiguous();
    header.triangles.assign(tri.data_ptr<int64_t>(), tri.data_ptr<int64_t>() + tri.numel());
    auto uv = topo.vertex_uv.to(torch::kCPU, torch::kFloat32).contiguous();
    header.vertex_uv.assign(uv.data_ptr<float>(), uv.data_ptr<float>() + uv.numel());
    auto lm = topo.landmarks68.to(torch::kCPU, torch::kInt64).contiguous();
    header.landmarks68.assign(lm.data_ptr<int64_t>(), lm.data_ptr<int64_t>() + lm.numel());
    auto mask = topo.mask.to(torch::kCPU, torch::kInt64).contiguous();
    header.mask.assign(mask.data_ptr<int64_t>(), mask.data_ptr<int64_t>() + mask.numel());
  }
  LayoutSizes sizes;
  sizes.latent_shape = cfg.latent_shape;
  sizes.latent_albedo = cfg.latent_albedo;
  sizes.uv_rows = cfg.uv_rows;
  sizes.uv_cols = cfg.uv_cols;
  sizes.num_vertices = topo.num_vertices();
  sizes.num_triangles = topo.num_triangles();
  sizes.terms = fit::FitTermNames(o.fit);
  setup.layout = ShardLayout::Make(sizes, ParseOutputs(o.outputs), o.dtype == "f16");
  return setup;
}

ImageRecord MakeFitRecord(const io::ManifestHeader& header, const FittedItem& l, const fit::FitResult& r,
                          const at::Tensor& pose, int64_t b, const ShardLayout& layout) {
  const auto& s = r.summaries[b];
  ImageRecord rec;
  rec.id = l.item->id;
  rec.position = l.position;
  rec.strings["/images/id"] = l.item->id;
  rec.strings["/images/source"] = SourcePath(header, *l.item);
  const bool finite = r.finite_input[b].item<bool>();
  std::string code, reason;
  if (!finite) {
    code = "nonfinite_input", reason = "the crop has NaN/inf pixels";
  } else if (!s.IsUsable()) {
    code = s.termination == fit::Termination::kNonFinite ? "nonfinite_loss" : "diverged";
    reason = s.BriefReport();
  }
  rec.strings["/images/status"] = code.empty() ? "ok" : "failed";
  rec.strings["/images/reason_code"] = code;
  rec.strings["/images/reason"] = reason;
  const auto& T = l.crop->crop_to_original;
  rec.doubles["/images/crop_to_original"] = {T(0, 0), T(0, 1), T(0, 2), T(1, 0), T(1, 1), T(1, 2)};
  rec.floats["/latents/f_shape"] = ToVector(r.f_shape[b]);
  rec.floats["/latents/f_albedo"] = ToVector(r.f_albedo[b]);
  rec.floats["/latents/projection"] = ToVector(r.projection[b]);
  rec.floats["/latents/lighting"] = ToVector(r.lighting[b]);
  auto pv = ToVector(pose[b]);
  rec.floats["/pose/angles"] = {pv[0], pv[1], pv[2]};
  rec.floats["/pose/scale"] = {pv[3]};
  rec.floats["/pose/translation"] = {pv[4], pv[5]};
  auto put_map = [&](const char* name, const at::Tensor& t) {
    if (layout.outputs.count(name)) rec.floats[std::string("/maps/") + name] = ToVector(t[b]);
  };
  put_map("shape", r.shape.value);
  put_map("shape_proxy", r.shape.proxy);
  put_map("albedo", r.albedo.value);
  put_map("albedo_proxy", r.albedo.proxy);
  put_map("shape_residual", r.shape.value - r.shape.proxy);
  put_map("albedo_residual", r.albedo.value - r.albedo.proxy);
  if (layout.outputs.count("vertices")) {
    rec.floats["/vertices/model"] = ToVector(r.shape_vertices[b]);
    auto sv = r.screen_vertices[b].to(torch::kCPU, torch::kFloat64);
    auto tm = torch::tensor({T(0, 0), T(0, 1), T(1, 0), T(1, 1)}, torch::kFloat64).view({2, 2});
    auto tt = torch::tensor({T(0, 2), T(1, 2)}, torch::kFloat64);
    rec.floats["/vertices/image"] = ToVector(sv.matmul(tm.t()) + tt);
  }
  rec.strings["/fit/termination"] = fit::TerminationName(s.termination);
  rec.strings["/fit/message"] = s.message;
  rec.ints["/fit/iterations"] = {s.iterations};
  rec.ints["/fit/best_iteration"] = {s.best_iteration};
  rec.ints["/fit/step_reductions"] = {s.step_reductions};
  rec.doubles["/fit/seconds"] = {s.seconds};
  rec.doubles["/fit/initial_loss"] = {s.initial_loss};
  rec.doubles["/fit/final_loss"] = {s.final_loss};
  std::vector<double> it, ft;
  for (const auto& name : r.term_names) {
    auto a = s.initial_terms.find(name), z = s.final_terms.find(name);
    it.push_back(a == s.initial_terms.end() ? std::nan("") : a->second);
    ft.push_back(z == s.final_terms.end() ? std::nan("") : z->second);
  }
  rec.doubles["/fit/initial_terms"] = it;
  rec.doubles["/fit/final_terms"] = ft;
  rec.floats["/metrics/photometric_l21"] = {r.photometric[b].item<float>()};
  // model-image px -> original px: divide by the crop's scale (crop px per original px)
  rec.floats["/metrics/landmark_error_px"] = {
      static_cast<float>(r.landmark_error[b].item<float>() / l.crop->scale)};
  return rec;
}

double PeakRssMiB() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

FitJobSummary RunFitJob(const FitJobOptions& o) {
  o.Check();
  const auto t_start = Clock::now();
  model::InstallTorchThreadHook();
  const int threads = env::ConfigureThreads(o.threads);
  InstallStopSignals();

  const auto manifest = io::ReadManifest(o.manifest);
  const auto spec = io::ShardSpec::Parse(o.shard, o.num_shards);
  const auto items = io::SelectShard(manifest, spec);
  FitJobSummary summary;
  summary.shard = spec.ToString();
  summary.total = static_cast<int64_t>(items.size());
  std::vector<std::string> shard_ids;
  for (const auto* it : items) shard_ids.push_back(it->id);

  CheckWritableDirectory(o.out, "output directory");  // before any work starts
  const auto paths = MakeShardPaths(o.out, spec);
  ShardLock lock(paths.lock());

  auto devices = ParseDevices(o);
  auto main_model = model::FaceModel::Load(o.model);
  const int S = main_model.config().image_size;

  auto setup = MakeShardSetup(o, main_model, manifest, spec);
  const auto& layout = setup.layout;
  ShardWriter writer(paths, setup.header, layout, o.part_size);
  if (o.overwrite) writer.RemoveAll();
  if (writer.Complete()) {
    log::Info("shard {} is already complete ({}); pass --overwrite to redo it", summary.shard, paths.file());
    io::hdf5::RowReader r(paths.file());
    for (const auto& s : r.Read("/images/status").strings) ++summary.counts[s];
    summary.complete = true;
    summary.shard_file = paths.file();
    summary.skipped = summary.total;
    summary.seconds = Since(t_start);
    return summary;
  }
  const auto done = writer.DoneIds();
  writer.BeginConsolidation(shard_ids);  // each part is copied into the shard file as it closes
  std::vector<Loaded> todo;
  for (size_t i = 0; i < items.size(); ++i) {
    if (done.count(items[i]->id)) continue;
    Loaded l;
    l.item = items[i];
    l.position = static_cast<int64_t>(i);
    todo.push_back(std::move(l));
  }
  summary.skipped = summary.total - static_cast<int64_t>(todo.size());
  if (summary.skipped > 0) log::Info("resuming shard {}: {} of {} images already done", summary.shard, summary.skipped, summary.total);
  if (o.devices.empty() && o.workers == 0 && devices.front().is_cpu()) {
    const size_t batches_to_do = (todo.size() + static_cast<size_t>(o.batch) - 1) / static_cast<size_t>(o.batch);
    devices.assign(static_cast<size_t>(AutoCpuWorkers(main_model.config(), threads, batches_to_do)), devices.front());
  }
  log::Info("fit shard {}: {} images to do, batch {}, {} worker(s) on {}, {} threads, steps {}", summary.shard,
            todo.size(), o.batch, devices.size(), devices.front().str(), threads, o.fit.steps);

  // --- the pipeline: loader -> batch queue -> fit workers -> record queue -> writer (this thread)
  BoundedQueue<WorkBatch> batches(std::max<size_t>(2, devices.size() * 2));
  BoundedQueue<std::vector<ImageRecord>> records(std::max<size_t>(4, devices.size() * 4));
  std::mutex error_mutex;
  std::exception_ptr error;
  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lk(error_mutex);
    if (!error) error = e;
    g_stop.store(true);
  };
  int cpu_workers = 0;
  for (const auto& d : devices) cpu_workers += d.is_cpu() ? 1 : 0;
  const int threads_per_cpu_worker = std::max(1, threads / std::max(1, cpu_workers));

  // Per-stage clocks (FitJobSummary::stage_seconds).
  double load_seconds = 0, write_seconds = 0;
  std::vector<double> records_seconds(devices.size(), 0.0);
  std::vector<fit::FitTiming> fit_timing(devices.size());
  std::thread loader([&] {
    try {
      for (size_t start = 0; start < todo.size() && !g_stop.load(); start += o.batch) {
        const size_t end = std::min(todo.size(), start + o.batch);
        std::vector<Loaded> chunk(todo.begin() + start, todo.begin() + end);
        const auto tl = Clock::now();
        tbb::parallel_for(size_t(0), chunk.size(), [&](size_t i) {
          auto& l = chunk[i];
          try {
            auto bgr = io::LoadImageBgr(SourcePath(manifest.header, *l.item));
            l.crop = io::CropFace(bgr, l.item->landmarks, S);
          } catch (const io::ItemError& e) {
            l.failure_code = e.code(), l.failure = e.what();
          } catch (const std::exception& e) {
            l.failure_code = io::reason::kError, l.failure = e.what();
          }
        });
        load_seconds += Since(tl);
        WorkBatch b;
        std::vector<ImageRecord> failed;
        for (auto& l : chunk) {
          if (l.failure.empty()) b.items.push_back(std::move(l));
          else failed.push_back(FailedRecord(manifest.header, l, l.failure_code, l.failure));
        }
        if (!failed.empty()) records.Push(std::move(failed));
        if (!b.items.empty()) batches.Push(std::move(b));
      }
    } catch (...) {
      fail(std::current_exception());
    }
    batches.Close();
  });

  std::vector<double> busy(devices.size(), 0.0);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < devices.size(); ++w) {
    workers.emplace_back([&, w] {
      try {
        const auto device = devices[w];
        const int n_threads = device.is_cpu() ? threads_per_cpu_worker : 1;
        try {
          at::set_num_threads(n_threads);  // OpenMP backend: this thread's team size
        } catch (const std::exception& e) {
          log::Debug("worker {}: cannot set the thread count: {}", w, e.what());
        }
        tbb::task_arena arena(n_threads);
        arena.execute([&] {
          fit::Fitter fitter(model::FaceModel::Load(o.model, device), o.fit);
          while (auto batch = batches.Pop()) {
            const auto t0 = Clock::now();
            std::vector<ImageRecord> out;
            const auto B = static_cast<int64_t>(batch->items.size());
            try {
              auto images = torch::empty({B, 3, S, S}, torch::kFloat32);
              std::vector<std::vector<std::array<double, 2>>> points(B);
              for (int64_t b = 0; b < B; ++b) {
                const auto& crop = batch->items[b].crop;
                cv::Mat rgb = io::BgrToLinearRgb(crop.image);
                images[b].copy_(torch::from_blob(rgb.data, {S, S, 3}, torch::kFloat32).permute({2, 0, 1}));
                for (const auto& p : crop.landmarks.points) points[b].push_back({p.x, p.y});
              }
              auto [lm, lw] = fit::PackLandmarks(points, S, S);
              auto r = fitter.Fit(images, lm, lw, [] { return g_stop.load(); });
              auto pose = fit::PoseFromProjection(r.projection).cpu();
              for (int64_t b = 0; b < B; ++b) {
                const auto& l = batch->items[b];
                const auto& s = r.summaries[b];
                if (s.termination == fit::Termination::kInterrupted) continue;  // dropped: redone on resume
                const auto tr = Clock::now();
                out.push_back(MakeFitRecord(manifest.header, FittedItem{l.item, l.position, &l.crop}, r, pose, b, layout));
                records_seconds[w] += Since(tr);
              }
            } catch (const std::exception& e) {
              out.clear();
              for (const auto& l : batch->items)
                out.push_back(FailedRecord(manifest.header, l, io::reason::kError, std::string("fit: ") + e.what()));
            }
            busy[w] += Since(t0);
            fit_timing[w] = fitter.timing();
            if (!out.empty()) records.Push(std::move(out));
          }
        });
      } catch (...) {
        fail(std::current_exception());
        // Drain so the loader never blocks.
        while (batches.Pop()) {
        }
      }
    });
  }
  std::thread closer([&] {
    loader.join();
    for (auto& t : workers) t.join();
    records.Close();
  });

  Progress progress("fit " + summary.shard, static_cast<int64_t>(todo.size()), ParseProgressMode(o.progress), "images");
  const auto t_pipeline = Clock::now();
  try {
    while (auto recs = records.Pop()) {
      int64_t failed = 0;
      const auto tw = Clock::now();
      for (auto& r : *recs) {
        failed += r.strings["/images/status"] != "ok";
        writer.Add(std::move(r));
      }
      write_seconds += Since(tw);
      summary.processed += static_cast<int64_t>(recs->size());
      summary.failed += failed;
      progress.Add(static_cast<int64_t>(recs->size()), failed);
    }
  } catch (...) {
    fail(std::current_exception());
    while (records.Pop()) {
    }
  }
  closer.join();
  const double wall = Since(t_pipeline);
  progress.Finish();
  auto tf = Clock::now();
  // Stopped early: no shard file this run, its parts are what a rerun resumes from.
  if (error || g_stop.load()) writer.CancelConsolidation();
  if (!error) writer.Flush();  // after a failed write the first error is the one to report
  write_seconds += Since(tf);
  if (error) {
    try {  // what the workers finished before a worker failed is still written
      writer.Flush();
    } catch (...) {
    }
    std::rethrow_exception(error);
  }
  double busy_sum = 0;
  for (double b : busy) busy_sum += b;
  summary.busy_fraction = wall > 0 ? busy_sum / (wall * static_cast<double>(devices.size())) : 0;
  log::Info("fitter busy {:.1f}% of {:.2f} s wall ({} worker(s))", summary.busy_fraction * 100, wall, devices.size());
  auto& st = summary.stage_seconds;
  st["load"] = load_seconds;
  for (size_t w = 0; w < devices.size(); ++w) {
    st["encode"] += fit_timing[w].encode;
    st["iterations"] += fit_timing[w].optimise;
    st["finish"] += fit_timing[w].finish;
    st["records"] += records_seconds[w];
  }
  auto log_stages = [&] {
    st["write"] = write_seconds;
    summary.peak_rss_mib = PeakRssMiB();
    log::Info("stages (s, summed over threads): load {:.2f}, encode {:.2f}, iterations {:.2f}, finish {:.2f}, "
              "records {:.2f}, write {:.2f} (of which after the fit {:.2f}); peak RSS {:.0f} MiB",
              st["load"], st["encode"], st["iterations"], st["finish"], st["records"], st["write"],
              st["consolidate"], summary.peak_rss_mib);
  };
  if (g_stop.load()) {
    summary.interrupted = true;
    summary.seconds = Since(t_start);
    log::Warn("shard {}: interrupted by a signal after {} images; rerun the same command to resume",
              summary.shard, summary.skipped + summary.processed);
    log_stages();
    return summary;
  }
  tf = Clock::now();
  summary.counts = writer.Finish(shard_ids);
  st["consolidate"] = Since(tf);  // after the fit: only what was not consolidated beside it
  write_seconds += st["consolidate"];
  log_stages();
  summary.complete = true;
  summary.shard_file = paths.file();
  summary.seconds = Since(t_start);
  return summary;
}

}  // namespace facebatch::batch
