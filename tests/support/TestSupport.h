#pragma once
// Helpers shared by the test suites.
#include <filesystem>
#include <string>
#include <vector>

namespace facebatch::testing {

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "facebatch-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CliResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// Runs the built `facebatch` binary with `args` (shell-quoted), capturing its output.
CliResult RunCli(const std::vector<std::string>& args, const std::string& env = "");

/// Path of the built `facebatch` binary.
std::string CliPath();

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& text);

}  // namespace facebatch::testing
