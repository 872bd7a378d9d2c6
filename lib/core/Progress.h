#pragma once
// Progress of a batch run on stderr: a live bar on a terminal, periodic
// timestamped log lines otherwise (SLURM logs). Each report has done/total,
// rate, ETA, failures, and the SLURM array job/task id when present.
// Kept by hand (issue 17): Debian packages no C++ progress-bar library; what is needed
// (a bar on a terminal, log lines in SLURM output files, thread-safe counts) is small.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace facebatch {

enum class ProgressMode { kAuto, kBar, kLog, kNone };

/// Parses "auto|bar|log|none"; throws UsageError otherwise.
ProgressMode ParseProgressMode(std::string_view text);

class Progress {
 public:
  /// `what` names the items ("images"); `log_interval` is the period of log lines.
  Progress(std::string label, int64_t total, ProgressMode mode = ProgressMode::kAuto,
           std::string what = "items", std::chrono::seconds log_interval = std::chrono::seconds(10));
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Records finished items (thread-safe); `failed` of them ended in failure.
  void Add(int64_t done, int64_t failed = 0);
  /// Prints the final summary line ("label: 10/10 images, 2 failed, 3.1 images/s, 3.2 s").
  /// Called by the destructor if not called before.
  void Finish();

  int64_t done() const { return done_.load(); }
  int64_t failed() const { return failed_.load(); }
  double ElapsedSeconds() const;
  /// The line a report would print now (for tests and logs).
  std::string StatusLine() const;

 private:
  void MaybeReport(bool force);

  std::string label_, what_;
  int64_t total_;
  ProgressMode mode_;
  std::chrono::seconds log_interval_;
  std::chrono::steady_clock::time_point start_, last_report_;
  std::atomic<int64_t> done_{0}, failed_{0};
  std::mutex mutex_;
  bool finished_ = false;
};

}  // namespace facebatch
