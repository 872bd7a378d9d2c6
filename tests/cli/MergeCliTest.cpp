// `facebatch merge` on the command line: help, usage errors (exit 2), nothing to merge (exit 1).
// Content, refusal and VDS behaviour: tests/batch/MergeTest.cpp.
#include <gtest/gtest.h>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;
using testing::TempDir;

TEST(MergeCli, HelpAndUsageErrors) {
  TempDir dir;
  auto h = RunCli({"merge", "--help"});
  EXPECT_EQ(h.exit_code, 0) << h.output;
  EXPECT_NE(h.output.find("--allow-missing"), std::string::npos);
  EXPECT_NE(h.output.find("--copy"), std::string::npos);
  EXPECT_EQ(RunCli({"merge", "--out", (dir / "m.h5").string()}).exit_code, 2);  // no inputs
  EXPECT_EQ(RunCli({"merge", dir.path().string()}).exit_code, 2);                // no --out
  EXPECT_EQ(RunCli({"merge", dir.path().string(), "--out", (dir / "m.txt").string()}).exit_code, 2);
  EXPECT_EQ(RunCli({"merge", dir.path().string(), "--out", (dir / "m.h5").string(), "--num-shards", "-1"}).exit_code, 2);
}

TEST(MergeCli, RefusesWhenNoShardIsComplete) {
  TempDir dir;
  auto r = RunCli({"merge", dir.path().string(), "--num-shards", "3", "--out", (dir / "m.h5").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("3 of 3 shards are not complete (0-2)"), std::string::npos) << r.output;
  r = RunCli({"merge", dir.path().string(), "--num-shards", "3", "--out", (dir / "m.h5").string(), "--allow-missing"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("nothing to merge"), std::string::npos) << r.output;
  r = RunCli({"merge", (dir / "shard-00000-of-00002.h5").string(), "--out", (dir / "m.h5").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;  // no such file
  r = RunCli({"merge", (dir / "notashard.h5").string(), "--out", (dir / "m.h5").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("shard-IIIII-of-NNNNN.h5"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
