// `facebatch export`: usage errors (exit 2) and unreadable inputs (exit 1, naming
// the file). Exports of real shards are tested in tests/exporter.
#include <gtest/gtest.h>

#include <filesystem>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;
using testing::TempDir;
using testing::WriteFile;

TEST(ExportCli, HelpListsTheKindsAndOptions) {
  auto r = RunCli({"export", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"obj|ply|glb|maps|overlay", "--ids", "--status", "--range", "--space", "--component",
                        "--map-format", "--threads", "--progress"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
}

TEST(ExportCli, UsageErrorsExitTwo) {
  TempDir dir;
  const std::string in = (dir / "in.h5").string();
  WriteFile(in, "x");
  const std::string out = (dir / "out").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"export", "stl", in, "--out", out},
           {"export", "obj", "--out", out},
           {"export", "obj", in},
           {"export", "obj", in, "--out", out, "--status", "good"},
           {"export", "obj", in, "--out", out, "--range", "5:2"},
           {"export", "obj", in, "--out", out, "--space", "world"},
           {"export", "maps", in, "--out", out, "--maps", "normals"},
           {"export", "maps", in, "--out", out, "--map-format", "tiff"}}) {
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << " " << r.output;
  }
}

TEST(ExportCli, AForeignFileIsAnErrorNamingIt) {
  TempDir dir;
  const std::string in = (dir / "notes.h5").string();
  WriteFile(in, "not hdf5\n");
  auto r = RunCli({"export", "obj", in, "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(in), std::string::npos) << r.output;
  const std::string missing = (dir / "missing.h5").string();
  r = RunCli({"export", "maps", missing, "--out", (dir / "out").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
