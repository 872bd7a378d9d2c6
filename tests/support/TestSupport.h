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

/// The Khronos glTF-Validator (npm package gltf-validator, installed by scripts/setup.sh in
/// tests/readers/gltf) on `files`: ok when every file has 0 errors and 0 warnings; `output`
/// has one line per file and every error and warning. A missing validator (or node) is not ok,
/// with a message saying how to install it.
struct GltfValidation {
  bool ok = false;
  std::string output;
};
GltfValidation ValidateGltf(const std::vector<std::filesystem::path>& files);
/// Every *.glb under `dir` (recursively) through ValidateGltf; returns how many were checked.
int ExpectValidGlbs(const std::filesystem::path& dir);

std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& text);

}  // namespace facebatch::testing
