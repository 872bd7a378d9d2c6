#pragma once
// `facebatch fit`: the main job (issue 7). For every ok item of one shard of a
// manifest: decode + crop (TBB), encoder init + latent fitting (fit/Fitter.h)
// on one worker per device, and one writer (the calling thread) that writes
// closed part files and finally the shard HDF5 file (batch/ShardWriter.h).
// Rerunning the same command resumes; SIGTERM/SIGUSR1 stop it with
// kExitIncomplete (75).
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "batch/ShardFile.h"
#include "fit/Fitter.h"

namespace facebatch::io {
struct Crop;
struct Item;
struct Manifest;
struct ManifestHeader;
struct ShardSpec;
}  // namespace facebatch::io

namespace facebatch::batch {

struct FitJobOptions {
  std::string manifest;         ///< --manifest (required)
  std::string model;            ///< --model model file (required)
  std::string out;              ///< --out output directory (required)
  std::string shard = "0/1";    ///< --shard i/N or auto ($SLURM_ARRAY_TASK_ID with --num-shards)
  int num_shards = 0;           ///< --num-shards N (required with auto; must agree with i/N)
  int batch = 4;                ///< --batch images per fit batch (measured best on CPU, docs/fitjob.md)
  std::string device = "cpu";   ///< --device cpu | cuda | cuda:K (plain cuda with several GPUs visible and SLURM_LOCALID set: cuda:(LOCALID mod count))
  std::string devices;          ///< --devices all | comma list (cpu, cuda:0, ...): one worker each; "" = --device x --workers
  /// --workers CPU workers when --devices is not given; 0 = auto (AutoCpuWorkers).
  int workers = 0;
  std::string outputs = "all";  ///< --outputs all | none | comma list of maps and "vertices"
  std::string dtype = "f32";    ///< --dtype f32 | f16 (UV maps and vertices)
  int part_size = 32;           ///< --part-size images per closed part file (a kill loses at most these + in flight)
  int threads = 0;              ///< --threads compute threads in all (0 = all cores), split over CPU workers
  std::string progress = "auto";///< --progress auto|bar|log|none
  bool overwrite = false;       ///< --overwrite: start the shard over (never while another process holds its lock)
  fit::FitOptions fit;          ///< --steps, --optimise, --loss.* ...
  std::string command;          ///< recorded in the file (set by the CLI)
  std::string config_text;      ///< effective configuration (set by the CLI), recorded in the file
  void Check() const;           ///< UsageError
};

struct FitJobSummary {
  std::string shard;            ///< "i/N"
  std::string shard_file;       ///< the consolidated file ("" while incomplete)
  int64_t total = 0;            ///< items of the shard
  int64_t skipped = 0;          ///< already done by an earlier run
  int64_t processed = 0;        ///< written by this run
  int64_t failed = 0;           ///< failed items written by this run
  std::map<std::string, int64_t> counts;  ///< by status (complete shards)
  bool complete = false;
  bool interrupted = false;
  double seconds = 0;
  double busy_fraction = 0;     ///< fit-worker busy time / (wall time x workers)
  /// Per-stage split, seconds summed over the threads doing it: "load" (image decode + crop,
  /// loader), "encode", "iterations" (the optimiser loop), "finish" (final decode, render,
  /// metrics; fit workers), "records" (results to shard records, workers), "write" (the HDF5
  /// writer: part files and consolidation), "consolidate" (the part of "write" after the fit:
  /// the shard file's last part, closing; the other parts are consolidated beside the fit).
  std::map<std::string, double> stage_seconds;
  double peak_rss_mib = 0;      ///< peak resident set size of the process at the end (getrusage)
  int ExitCode() const;         ///< kExitOk, kExitSomeFailed or kExitIncomplete
  std::string ToString() const;
};

/// Header (provenance, topology, configuration) and layout of the shard file that the
/// job `o` writes with `model` (also used by `facebatch bench` to write through the real writer).
struct ShardSetup {
  ShardHeader header;
  ShardLayout layout;
};
ShardSetup MakeShardSetup(const FitJobOptions& o, const model::FaceModel& model, const io::Manifest& manifest,
                          const io::ShardSpec& spec);

/// One fitted image: its manifest item, position in the shard and crop.
struct FittedItem {
  const io::Item* item = nullptr;
  int64_t position = 0;
  const io::Crop* crop = nullptr;
};
/// The shard record (schemas/shard.md) of image `b` of the fitted batch `r`; `pose` is
/// fit::PoseFromProjection(r.projection) on the CPU. Status "failed" with a reason for a
/// non-finite input or an unusable fit.
ImageRecord MakeFitRecord(const io::ManifestHeader& header, const FittedItem& fitted, const fit::FitResult& r,
                          const at::Tensor& pose, int64_t b, const ShardLayout& layout);

/// Peak resident set size of this process so far, MiB (getrusage ru_maxrss).
double PeakRssMiB();

/// `--workers 0` on the CPU: how many fit workers (threads split between them) for a model of
/// `config` given `threads` compute threads and `batches` batches to fit: one single-threaded
/// worker per thread up to the demo preset's UV size, one worker with every thread above it.
int AutoCpuWorkers(const model::ModelConfig& config, int threads, size_t batches);

/// Runs the job. Stops early (interrupted) when StopRequested() becomes true.
FitJobSummary RunFitJob(const FitJobOptions& options);

/// SIGTERM and SIGUSR1 set the stop flag (installed by RunFitJob).
void InstallStopSignals();
bool StopRequested();
void ResetStopRequest();  ///< for tests

}  // namespace facebatch::batch
