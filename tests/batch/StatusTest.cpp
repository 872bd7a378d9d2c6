// `facebatch status` (issue 8) on fit output directories made by the real fit
// job: done / running (lock held by a live fit) / failed (killed mid-run) /
// missing shards, image counts by status and reason, the --array list; and
// the SLURM_LOCALID device choice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "MergeFixture.h"
#include "TestSupport.h"
#include "batch/Status.h"
#include "core/Env.h"

namespace facebatch::batch {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::RunCli;
using facebatch::testing::TempDir;

TEST(StatusTest, CompactRanges) {
  EXPECT_EQ(CompactRanges({}), "");
  EXPECT_EQ(CompactRanges({5}), "5");
  EXPECT_EQ(CompactRanges({0, 1, 2, 3, 7, 9, 10, 11}), "0-3,7,9-11");
  EXPECT_EQ(CompactRanges({11, 3, 2, 9, 10, 3}), "2-3,9-11");
  EXPECT_EQ(CompactRanges({1, 3, 5}), "1,3,5");
}

TEST(StatusTest, SlurmLocalIdPicksOneOfSeveralDevices) {
  ::unsetenv("SLURM_LOCALID");
  EXPECT_FALSE(env::SlurmLocalDevice(4).has_value());
  ::setenv("SLURM_LOCALID", "5", 1);
  EXPECT_EQ(env::SlurmLocalDevice(4).value_or(-1), 1);
  EXPECT_EQ(env::SlurmLocalDevice(8).value_or(-1), 5);
  EXPECT_FALSE(env::SlurmLocalDevice(1).has_value());  // one visible device: nothing to choose
  ::setenv("SLURM_LOCALID", "x", 1);
  EXPECT_FALSE(env::SlurmLocalDevice(4).has_value());
  ::unsetenv("SLURM_LOCALID");
}

pid_t SpawnCli(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::string bin = facebatch::testing::CliPath();
    std::vector<std::string> copy = args;
    std::vector<char*> argv{bin.data()};
    for (auto& s : copy) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

bool WaitFor(const std::function<bool()>& cond, double seconds) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int PartFiles(const fs::path& parts) {
  int n = 0;
  std::error_code ec;
  if (!fs::is_directory(parts, ec)) return 0;
  for (const auto& e : fs::directory_iterator(parts, ec)) n += e.path().extension() == ".h5" ? 1 : 0;
  return n;
}

// 4 shards of 12 images: shard 0 done (with the failed item), shard 1 running then killed with
// SIGKILL after its first closed part, shards 2 and 3 never started.
TEST(StatusTest, DoneRunningFailedMissingAndTheResubmitList) {
  TempDir dir("facebatch-status");
  auto f = merge_test::MakeFitFixture(dir.path(), 12);
  const auto out = dir.path() / "fits";
  merge_test::FitShard(f, out, 0, 4);

  // Shard 1 runs slowly (one image per part, many steps) until we kill it.
  pid_t pid = SpawnCli(merge_test::FitArgs(f, out, 1, 4, {"--steps", "1000", "--tolerance", "0", "--batch", "1", "--part-size", "1"}),
                       dir.path() / "fit1.log");
  const auto parts = out / "shard-00001-of-00004.parts";
  ASSERT_TRUE(WaitFor([&] { return PartFiles(parts) >= 1; }, 120)) << testing::ReadFile(dir.path() / "fit1.log");
  {
    auto r = RunCli({"status", out.string(), "--num-shards", "4"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(running +1 / 4 +1\n)"))) << r.output;
    EXPECT_NE(r.output.find("resubmit: --array=2-3"), std::string::npos) << r.output;  // never a running shard
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st));

  auto r = RunCli({"status", out.string(), "--num-shards", "4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["format"], "facebatch-status");
  EXPECT_EQ(j["num_shards"], 4);
  EXPECT_EQ(j["complete"], false);
  EXPECT_EQ(j["states"]["done"], nlohmann::json::array({0}));
  EXPECT_EQ(j["states"]["running"], nlohmann::json::array());
  EXPECT_EQ(j["states"]["failed"], nlohmann::json::array({1}));
  EXPECT_EQ(j["states"]["missing"], nlohmann::json::array({2, 3}));
  EXPECT_EQ(j["resubmit"], "1-3");
  // Shard 0 of 12 items in 4 shards: positions 0, 4, 8 (img00, img04, img08), all ok.
  const auto& s0 = j["shards"][0];
  EXPECT_EQ(s0["state"], "done");
  EXPECT_EQ(s0["images"], 3);
  EXPECT_EQ(j["images"]["total"], 3);
  EXPECT_EQ(j["shards"][1]["images"], 3);  // from the manifest recorded in the part files
  EXPECT_GE(j["shards"][1]["images_in_parts"].get<int>(), 1);
  EXPECT_NE(j["shards"][1]["reason"].get<std::string>().find("closed parts"), std::string::npos);

  // Finish every shard: shard 3 holds img03 (position 3), whose image was deleted.
  for (int i = 1; i < 4; ++i) merge_test::FitShard(f, out, i, 4);
  r = RunCli({"status", out.string()});  // N from the file names
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(done +4 / 4 +0-3\n)"))) << r.output;
  EXPECT_NE(r.output.find("failed:missing_image"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("complete: every shard is done"), std::string::npos) << r.output;
  j = nlohmann::json::parse(RunCli({"status", out.string(), "--json"}).output);
  EXPECT_EQ(j["complete"], true);
  EXPECT_EQ(j["images"]["total"], 12);
  EXPECT_EQ(j["images"]["ok"], 11);
  EXPECT_EQ(j["images"]["failed"], 1);
  EXPECT_EQ(j["images"]["failed:missing_image"], 1);
  EXPECT_EQ(j["resubmit"], "");
}

}  // namespace
}  // namespace facebatch::batch
