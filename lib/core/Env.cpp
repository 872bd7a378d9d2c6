#include "core/Env.h"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>
#include <sched.h>
#include <tbb/global_control.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <memory>
#include <thread>

namespace facebatch::env {

std::optional<long> GetLong(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return x;
}

std::string SlurmInfo::Tag() const {
  if (array_job_id && array_task_id) return std::to_string(*array_job_id) + "_" + std::to_string(*array_task_id);
  if (job_id) return std::to_string(*job_id);
  return {};
}

SlurmInfo ReadSlurm() {
  SlurmInfo s;
  s.job_id = GetLong("SLURM_JOB_ID");
  s.array_job_id = GetLong("SLURM_ARRAY_JOB_ID");
  s.array_task_id = GetLong("SLURM_ARRAY_TASK_ID");
  s.local_id = GetLong("SLURM_LOCALID");
  return s;
}

std::optional<int> SlurmLocalDevice(int visible_devices) {
  if (visible_devices <= 1) return std::nullopt;
  auto local = GetLong("SLURM_LOCALID");
  if (!local || *local < 0) return std::nullopt;
  return static_cast<int>(*local % visible_devices);
}

int AvailableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {
void (*g_torch_hook)(int) = nullptr;
std::unique_ptr<tbb::global_control> g_tbb_limit;

void SetBlasSingleThreaded() { SetBlasThreads(1); }
}  // namespace

bool SetBlasThreads(int threads) {
  // OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded, which is before
  // main(); so ask it directly. Other BLAS builds lack the symbol: nothing to do.
  using SetFn = void (*)(int);
  for (const char* sym : {"openblas_set_num_threads", "goto_set_num_threads"}) {
    if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, sym))) {
      fn(threads);
      return true;
    }
  }
  return false;
}

void EnsurePassiveOpenMP(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the active policy
}

namespace {
AllocatorTuning g_allocator{false, "glibc defaults"};
}  // namespace

AllocatorTuning TuneAllocator() {
  AllocatorTuning t;
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"}) {
    if (std::getenv(name)) {
      t.description = std::string("glibc as configured by the environment (") + name + " is set)";
      g_allocator = t;
      return t;
    }
  }
#ifdef __GLIBC__
  // Order matters only in that each call fixes its own parameter and turns off the dynamic
  // adjustment of the mmap and trim thresholds (mallopt(3)).
  constexpr int kMmapThreshold = 32 << 20;  // DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the largest allowed
  constexpr int kTopPad = 256 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1 &&
                  mallopt(M_TOP_PAD, kTopPad) == 1;
  t.applied = ok;
  t.description = ok ? "glibc tuned for tensors (mmap threshold 32 MiB, trim threshold 2 GiB, top pad 256 MiB)"
                     : "glibc defaults (mallopt refused the tuning)";
#else
  t.description = "the C library's defaults (not glibc)";
#endif
  g_allocator = t;
  return t;
}

AllocatorTuning CurrentAllocatorTuning() { return g_allocator; }

void SetTorchThreadHook(void (*hook)(int)) { g_torch_hook = hook; }

int ConfigureThreads(int threads) {
  if (threads <= 0) threads = AvailableCores();
  SetBlasSingleThreaded();
  g_tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<size_t>(threads));
  if (g_torch_hook) g_torch_hook(threads);
  return threads;
}

}  // namespace facebatch::env
