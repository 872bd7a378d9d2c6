#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "TestSupport.h"

namespace facebatch {
namespace {
namespace fs = std::filesystem;
using testing::RunCli;
using testing::TempDir;
const fs::path kSamples = FACEBATCH_SAMPLES;

TEST(ShardsCli, PrintsABalancedPlan) {
  TempDir dir;
  const std::string m = (dir / "m.jsonl").string();
  auto r = RunCli({"index", "--root", (kSamples / "300W-LP").string(), "--out", m, "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = RunCli({"shards", "--manifest", m, "--num-shards", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 12 ok items over 5 shards: 3, 3, 2, 2, 2.
  std::regex row(R"((\d+)/5\s+(\d+)\s+(\S+)\s+(\S+))");
  std::vector<int> counts;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), row), end; it != end; ++it)
    counts.push_back(std::stoi((*it)[2]));
  EXPECT_EQ(counts, (std::vector<int>{3, 3, 2, 2, 2})) << r.output;
  EXPECT_NE(r.output.find("300w-lp/AFW/"), std::string::npos);
  EXPECT_NE(r.output.find("fnv1a64:"), std::string::npos);

  // One shard's ids, explicit and from SLURM_ARRAY_TASK_ID; together they cover every item once.
  std::multiset<std::string> all;
  for (int k = 0; k < 5; ++k) {
    auto one = RunCli({"shards", "--manifest", m, "--num-shards", "5", "--shard", "auto"},
                      "SLURM_ARRAY_TASK_ID=" + std::to_string(k));
    ASSERT_EQ(one.exit_code, 0) << one.output;
    auto explicit_one = RunCli({"shards", "--manifest", m, "--shard", std::to_string(k) + "/5", "--num-shards", "5"});
    EXPECT_EQ(one.output, explicit_one.output);
    std::istringstream ss(one.output);
    std::string line;
    while (std::getline(ss, line))
      if (line.rfind("300w-lp/", 0) == 0) all.insert(line);
  }
  EXPECT_EQ(all.size(), 12u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 12u);
  r = RunCli({"shards", "--manifest", m, "--num-shards", "5", "--shard", "auto"}, "env -u SLURM_ARRAY_TASK_ID");
  EXPECT_EQ(r.exit_code, 2) << r.output;  // not in a SLURM array
  r = RunCli({"shards", "--manifest", m, "--num-shards", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = RunCli({"shards", "--manifest", (dir / "missing.jsonl").string(), "--num-shards", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
