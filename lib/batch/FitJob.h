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

#include "fit/Fitter.h"

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
  int workers = 1;              ///< --workers CPU workers when --devices is not given
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
  int ExitCode() const;         ///< kExitOk, kExitSomeFailed or kExitIncomplete
  std::string ToString() const;
};

/// Runs the job. Stops early (interrupted) when StopRequested() becomes true.
FitJobSummary RunFitJob(const FitJobOptions& options);

/// SIGTERM and SIGUSR1 set the stop flag (installed by RunFitJob).
void InstallStopSignals();
bool StopRequested();
void ResetStopRequest();  ///< for tests

}  // namespace facebatch::batch
