#include "core/Progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"

namespace facebatch {

ProgressMode ParseProgressMode(std::string_view t) {
  if (t == "auto") return ProgressMode::kAuto;
  if (t == "bar") return ProgressMode::kBar;
  if (t == "log") return ProgressMode::kLog;
  if (t == "none") return ProgressMode::kNone;
  throw UsageError("unknown progress mode '" + std::string(t) + "' (expected auto, bar, log or none)");
}

namespace {
std::string FormatDuration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}
}  // namespace

Progress::Progress(std::string label, int64_t total, ProgressMode mode, std::string what,
                   std::chrono::seconds log_interval)
    : label_(std::move(label)), what_(std::move(what)), total_(total), mode_(mode), log_interval_(log_interval) {
  if (mode_ == ProgressMode::kAuto) mode_ = isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kLog;
  start_ = last_report_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { Finish(); }

double Progress::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::StatusLine() const {
  int64_t done = done_.load(), failed = failed_.load();
  double el = ElapsedSeconds();
  double rate = el > 0 ? done / el : 0.0;
  double eta = rate > 0 ? (total_ - done) / rate : -1;
  std::string tag = env::ReadSlurm().Tag();
  return fmt::format("{}: {}/{} {} ({:.1f}%), {} failed, {:.2f} {}/s, elapsed {}, ETA {}{}", label_, done, total_,
                     what_, total_ > 0 ? 100.0 * done / total_ : 100.0, failed, rate, what_, FormatDuration(el),
                     FormatDuration(eta), tag.empty() ? "" : ", slurm " + tag);
}

void Progress::Add(int64_t done, int64_t failed) {
  done_ += done;
  failed_ += failed;
  MaybeReport(false);
}

void Progress::MaybeReport(bool force) {
  if (mode_ == ProgressMode::kNone) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (mode_ == ProgressMode::kBar) {
    if (!force && now - last_report_ < std::chrono::milliseconds(100)) return;
    last_report_ = now;
    int64_t done = done_.load();
    const int width = 30;
    int fill = total_ > 0 ? static_cast<int>(width * std::min<int64_t>(done, total_) / total_) : width;
    std::string bar(fill, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %s\033[K", bar.c_str(), StatusLine().c_str());
    std::fflush(stderr);
  } else {
    if (!force && now - last_report_ < log_interval_) return;
    last_report_ = now;
    log::Info("progress {}", StatusLine());
  }
}

void Progress::Finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_) return;
  }
  if (mode_ == ProgressMode::kBar) {
    MaybeReport(true);
    std::fprintf(stderr, "\n");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  if (mode_ != ProgressMode::kNone)
    log::Info("summary {}: {}/{} {}, {} failed, {:.2f} {}/s, {:.1f} s", label_, done_.load(), total_, what_,
              failed_.load(), ElapsedSeconds() > 0 ? done_.load() / ElapsedSeconds() : 0.0, what_, ElapsedSeconds());
}

}  // namespace facebatch
