#pragma once
// What the process learns from its environment: SLURM array variables and
// the thread configuration of ATen / TBB / BLAS.
#include <optional>
#include <string>

namespace facebatch::env {

/// SLURM identifiers of this process, when it runs inside a job.
struct SlurmInfo {
  std::optional<long> job_id;         ///< SLURM_JOB_ID
  std::optional<long> array_job_id;   ///< SLURM_ARRAY_JOB_ID
  std::optional<long> array_task_id;  ///< SLURM_ARRAY_TASK_ID
  std::optional<long> local_id;       ///< SLURM_LOCALID (task index on its node)
  /// "123_4" for an array task, "123" for a plain job, "" outside SLURM.
  std::string Tag() const;
};

/// Reads the SLURM_* variables (not cached: tests may change them).
SlurmInfo ReadSlurm();

/// Reads an integer environment variable; nullopt when unset or not an integer.
std::optional<long> GetLong(const char* name);

/// Number of hardware threads this process may use (affinity-aware).
int AvailableCores();

/// Sets the compute thread count everywhere: ATen's intra-op pool (when a
/// torch module registers its hook), TBB's global limit, and BLAS kept at one
/// thread (OpenBLAS inside ATen's parallel regions oversubscribes; see
/// DESIGN.md). threads <= 0 means all available cores. Returns the count used.
int ConfigureThreads(int threads);

/// Hook a torch-using module installs so that core stays free of torch.
void SetTorchThreadHook(void (*hook)(int threads));

}  // namespace facebatch::env
