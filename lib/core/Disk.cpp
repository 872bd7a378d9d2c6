#include "core/Disk.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/Error.h"

namespace facebatch {
namespace fs = std::filesystem;

namespace {
// The nearest existing directory at or above `path`.
fs::path ExistingDirectory(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  if (ec) p = path;
  while (!p.empty()) {
    if (fs::is_directory(p, ec)) return p;
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return ".";
}

std::string Bytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.1f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.0f} KiB", b / 1024.0);
  return fmt::format("{:.0f} bytes", b);
}
}  // namespace

std::string DiskDiagnosis(const std::string& path) {
  const fs::path dir = ExistingDirectory(path);
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) == 0) {
    if (s.f_flag & ST_RDONLY) return " (read-only file system)";
    const double free_bytes = static_cast<double>(s.f_bavail) * static_cast<double>(s.f_frsize);
    // "Full": under 1 MiB or 0.5 % of the file system left for an unprivileged writer.
    const double total = static_cast<double>(s.f_blocks) * static_cast<double>(s.f_frsize);
    if (free_bytes < std::max(1024.0 * 1024, 0.005 * total))
      return fmt::format(" (no space left on the device: {} free on {})", Bytes(free_bytes), dir.string());
    if (s.f_favail == 0) return fmt::format(" (no free inodes on {})", dir.string());
  }
  if (::access(dir.c_str(), W_OK) != 0) return fmt::format(" ({} is not writable: {})", dir.string(), std::strerror(errno));
  return "";
}

void CheckWritableDirectory(const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw InputError(dir, fmt::format("cannot create the {}: {}{}", what, ec.message(), DiskDiagnosis(dir)));
  if (!fs::is_directory(dir)) throw InputError(dir, fmt::format("the {} is not a directory", what));
  const auto probe = (fs::path(dir) / fmt::format(".facebatch-write-test-{}", ::getpid())).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int e = errno;
    const std::string why = e == EROFS ? "" : DiskDiagnosis(dir);  // EROFS's words say it already
    throw InputError(dir, fmt::format("the {} is not writable: {}{}", what, std::strerror(e), why));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace facebatch
