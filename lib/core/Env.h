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

/// Device choice for one of several tasks of a job step on a node: when more
/// than one device is visible and SLURM_LOCALID is set, the device index
/// SLURM_LOCALID mod visible_devices (so tasks 0, 1, ... of a node spread over
/// its GPUs); nullopt otherwise (use the default device). CUDA_VISIBLE_DEVICES
/// is treated as opaque: only the count of visible devices matters.
std::optional<int> SlurmLocalDevice(int visible_devices);

/// Reads an integer environment variable; nullopt when unset or not an integer.
std::optional<long> GetLong(const char* name);

/// Number of hardware threads this process may use (affinity-aware).
int AvailableCores();

/// Sets the BLAS library's own thread count (OpenBLAS, found at run time; false when the BLAS
/// in use has no such call). ConfigureThreads keeps it at 1 (ATen parallelises around it);
/// benchmarks raise it for a reference and set it back.
bool SetBlasThreads(int threads);

/// Sets the compute thread count everywhere: ATen's intra-op pool (when a
/// torch module registers its hook), TBB's global limit, and BLAS kept at one
/// thread (OpenBLAS inside ATen's parallel regions oversubscribes; see
/// DESIGN.md). threads <= 0 means all available cores. Returns the count used.
int ConfigureThreads(int threads);

/// ATen's OpenMP threads spin while idle (OMP_WAIT_POLICY=ACTIVE behaviour of
/// libgomp) and starve the TBB threads of the rasteriser and the I/O pipeline:
/// measured 2.5x slower at 2 threads. libgomp reads the policy once, when it is
/// loaded, so when the user has not set OMP_WAIT_POLICY this sets it to PASSIVE
/// and re-executes the binary (/proc/self/exe) with the same arguments. Returns
/// only when no re-exec was needed or it failed.
void EnsurePassiveOpenMP(char** argv);

/// Hook a torch-using module installs so that core stays free of torch.
void SetTorchThreadHook(void (*hook)(int threads));

}  // namespace facebatch::env
