#include "core/Log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "core/Env.h"
#include "core/Error.h"

namespace facebatch::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mutex;

const char* Name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info ";
    case Level::kWarn: return "warn ";
    case Level::kError: return "error";
    default: return "";
  }
}
}  // namespace

Level ParseLevel(std::string_view t) {
  if (t == "debug") return Level::kDebug;
  if (t == "info") return Level::kInfo;
  if (t == "warn" || t == "warning") return Level::kWarn;
  if (t == "error") return Level::kError;
  if (t == "off" || t == "none") return Level::kOff;
  throw UsageError("unknown log level '" + std::string(t) + "' (expected debug, info, warn, error or off)");
}

void SetLevel(Level level) { g_level = static_cast<int>(level); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load() && level != Level::kOff; }

const std::string& ProcessTag() {
  static const std::string tag = [] {
    std::string s = env::ReadSlurm().Tag();
    return s.empty() ? std::string() : "[slurm " + s + "] ";
  }();
  return tag;
}

std::string UtcTimestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return stamp;
}

void Write(Level level, std::string_view message) {
  const std::string stamp = UtcTimestamp();
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s %s %s%.*s\n", stamp.c_str(), Name(level), ProcessTag().c_str(),
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace facebatch::log
