#include <gtest/gtest.h>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(ModelCli, InitThenInfo) {
  testing::TempDir dir;
  auto out = (dir / "m.h5").string();
  auto r = RunCli({"model", "init", "--preset", "demo", "--uv", "48x56", "--ablation", "gl", "--seed", "3", "--out", out,
                   "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("weights sha256"), std::string::npos) << r.output;
  auto info = RunCli({"model", "info", out});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  for (const char* s : {"kind:            nonlinear", "preset:          demo", "ablation:        gl\n",
                        "UV size:         48 x 56", "parameters:      E ", "command:         facebatch model init",
                        "(untrained)"})
    EXPECT_NE(info.output.find(s), std::string::npos) << s << "\n" << info.output;
  // The same seed gives the same weights; the hash is printed by both verbs.
  auto out2 = (dir / "m2.h5").string();
  auto r2 = RunCli({"model", "init", "--preset", "demo", "--uv", "48x56", "--ablation", "gl", "--seed", "3", "--out", out2});
  auto hash = r.output.substr(r.output.find("weights sha256: ") + 16, 64);
  EXPECT_NE(r2.output.find(hash), std::string::npos);
  EXPECT_NE(info.output.find(hash), std::string::npos);
}

TEST(ModelCli, LinearKind) {
  testing::TempDir dir;
  auto out = (dir / "lin.h5").string();
  auto r = RunCli({"model", "init", "--preset", "demo", "--kind", "linear", "--uv", "32x40", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto info = RunCli({"model", "info", out});
  EXPECT_NE(info.output.find("kind:            linear"), std::string::npos) << info.output;
}

TEST(ModelCli, BadUsageAndBadFiles) {
  testing::TempDir dir;
  EXPECT_EQ(RunCli({"model", "init", "--preset", "huge", "--out", (dir / "x.h5").string()}).exit_code, 2);
  EXPECT_EQ(RunCli({"model", "init", "--preset", "demo"}).exit_code, 2);  // no --out
  EXPECT_EQ(RunCli({"model", "init", "--uv", "12", "--out", (dir / "x.h5").string()}).exit_code, 2);
  EXPECT_EQ(RunCli({"model", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli({"model", "--help"}).exit_code, 0);
  EXPECT_EQ(RunCli({"model", "init", "--help"}).exit_code, 0);
  auto foreign = (dir / "foreign.h5").string();
  testing::WriteFile(foreign, "hello");
  auto r = RunCli({"model", "info", foreign});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(foreign + ": not an HDF5 file"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
