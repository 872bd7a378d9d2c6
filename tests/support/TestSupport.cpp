#include "TestSupport.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace facebatch::testing {
namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path p = fs::temp_directory_path() / (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string CliPath() { return FACEBATCH_BINARY; }

namespace {
std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

// Runs a shell command line, capturing stdout and stderr together.
static CliResult RunShell(const std::string& cmd) {
  CliResult r;
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CliResult RunCli(const std::vector<std::string>& args, const std::string& env) {
  std::string cmd = env.empty() ? "" : env + " ";
  cmd += Quote(CliPath());
  for (const auto& a : args) cmd += " " + Quote(a);
  return RunShell(cmd);
}

GltfValidation ValidateGltf(const std::vector<fs::path>& files) {
  std::string cmd = "node " + Quote(std::string(FACEBATCH_SOURCE_DIR) + "/tests/readers/gltf/validate.cjs");
  for (const auto& f : files) cmd += " " + Quote(f.string());
  const CliResult r = RunShell(cmd);
  GltfValidation v{r.exit_code == 0, r.output};
  if (r.exit_code == 127) v.output += "\nnode not found: run scripts/setup.sh (it installs nodejs and the glTF-Validator)";
  return v;
}

int ExpectValidGlbs(const fs::path& dir) {
  std::vector<fs::path> glbs;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".glb") glbs.push_back(e.path());
  if (glbs.empty()) return 0;
  const auto v = ValidateGltf(glbs);
  EXPECT_TRUE(v.ok) << "Khronos glTF-Validator on " << dir << ":\n" << v.output;
  return static_cast<int>(glbs.size());
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace facebatch::testing
