// `facebatch status` on the command line: help, the shard count, --json of a fit that has not
// started. States of real fits: tests/batch/StatusTest.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;
using testing::TempDir;

TEST(StatusCli, NothingStartedYet) {
  TempDir dir;
  auto h = RunCli({"status", "--help"});
  EXPECT_EQ(h.exit_code, 0) << h.output;
  EXPECT_NE(h.output.find("--json"), std::string::npos);
  auto r = RunCli({"status", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // N unknown
  EXPECT_NE(r.output.find("--num-shards"), std::string::npos) << r.output;
  r = RunCli({"status", dir.path().string(), "--num-shards", "12"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resubmit: --array=0-11"), std::string::npos) << r.output;
  r = RunCli({"status", dir.path().string(), "--num-shards", "12", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["format"], "facebatch-status");
  EXPECT_EQ(j["resubmit"], "0-11");
  EXPECT_EQ(j["states"]["missing"].size(), 12u);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(RunCli({"status", (dir / "nope").string()}).exit_code, 1);
}

}  // namespace
}  // namespace facebatch
