#include <gtest/gtest.h>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(CliBinary, VersionAndHelp) {
  auto v = RunCli({"version"});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  EXPECT_NE(v.output.find("facebatch "), std::string::npos);
  auto h = RunCli({"help"});
  EXPECT_EQ(h.exit_code, 0) << h.output;
  EXPECT_NE(h.output.find("Commands:"), std::string::npos);
}

TEST(CliBinary, UnknownCommandIsUsageError) {
  auto r = RunCli({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown command"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
