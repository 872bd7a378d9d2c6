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

/// glibc's malloc by default serves every block above its dynamic mmap threshold from a fresh
/// mapping and returns the top of the heap to the kernel whenever more than twice that is free.
/// A fit iteration frees and re-allocates the same activation tensors every iteration, so each
/// iteration paid for new pages: page faults and kernel zeroing (measured: 0.8-1.4 million minor
/// faults for 16 faces, 10-15% of the CPU time in the kernel; docs/bench.md "The allocator").
/// TuneAllocator keeps that memory in the process instead: blocks up to 32 MiB (glibc's largest
/// allowed threshold) come from the heap, the heap is trimmed only above 2 GiB free, and it
/// grows by 256 MiB at a time. Peak RSS rose by 25-35 MiB on a 16-face fit (the pages are kept for reuse).
/// Called first thing by the binaries' main(). A user who set any of glibc's own malloc
/// variables (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, GLIBC_TUNABLES,
/// even empty) keeps exactly what they asked for: nothing is changed.
struct AllocatorTuning {
  bool applied = false;
  std::string description;  ///< for logs and the bench report
};
AllocatorTuning TuneAllocator();
/// What the last TuneAllocator call did (applied false, "glibc defaults" when never called).
AllocatorTuning CurrentAllocatorTuning();

/// Hook a torch-using module installs so that core stays free of torch.
void SetTorchThreadHook(void (*hook)(int threads));

}  // namespace facebatch::env
