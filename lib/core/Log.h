#pragma once
// One logging facility for the whole toolkit: levels, timestamps, and the SLURM
// array job/task id (when present) on every line. Thread-safe; writes to stderr.
// Kept by hand (issue 17): a few lines on fmt, which is already a dependency; it must share
// stderr with the progress bar (core/Progress.h clears and redraws around each line) and tag
// every line with the array task, which Debian's spdlog would need a custom sink and
// formatter for.
#include <fmt/format.h>

#include <string>
#include <string_view>

namespace facebatch::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

/// Parses "debug|info|warn|error|off"; throws UsageError otherwise.
Level ParseLevel(std::string_view text);
void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);

/// Writes one line: "2026-11-24T20:01:02Z info  [slurm 123_4] message".
void Write(Level level, std::string_view message);

/// The current time as ISO 8601 UTC, "2026-11-24T20:01:02Z" (log lines, file provenance).
std::string UtcTimestamp();

/// Prefix that identifies this process in logs ("slurm 123_4", "pid 42").
const std::string& ProcessTag();

template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kWarn)) Write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  if (Enabled(Level::kError)) Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace facebatch::log
