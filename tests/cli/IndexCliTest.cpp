#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "TestSupport.h"

namespace facebatch {
namespace {
namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunCli;
using testing::TempDir;
const fs::path kSamples = FACEBATCH_SAMPLES;

nlohmann::json Header(const fs::path& manifest) {
  std::ifstream in(manifest);
  std::string line;
  std::getline(in, line);
  return nlohmann::json::parse(line);
}

TEST(IndexCli, IndexesEverySampleCorpus) {
  TempDir dir;
  const std::vector<std::pair<std::string, int>> corpora = {
      {"300W-LP", 12}, {"AFLW2000", 4}, {"CelebA", 6}, {"folder", 4}};
  for (const auto& [name, n] : corpora) {
    fs::path out = dir / (name + ".jsonl");
    auto r = RunCli({"index", "--root", (kSamples / name).string(), "--out", out.string(), "--progress", "log",
                     "--threads", "2"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(std::to_string(n) + " items: " + std::to_string(n) + " ok, 0 failed"), std::string::npos)
        << r.output;
    nlohmann::json h = Header(out);
    EXPECT_EQ(h["format"], "facebatch-manifest");
    EXPECT_EQ(h["version"], 1);
    EXPECT_EQ(h["counts"]["ok"], n);
  }
}

TEST(IndexCli, PartitionConfigAndFailures) {
  TempDir dir;
  // --partition through a --config file; the command line wins over the file.
  testing::WriteFile(dir / "index.ini", "partition = val\ncorpus = celeba\n");
  auto r = RunCli({"index", "--config", (dir / "index.ini").string(), "--root", (kSamples / "CelebA").string(),
                   "--out", (dir / "val.jsonl").string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Header(dir / "val.jsonl")["counts"]["total"], 1);
  r = RunCli({"index", "--config", (dir / "index.ini").string(), "--partition", "train", "--root",
              (kSamples / "CelebA").string(), "--out", (dir / "train.jsonl").string(), "--progress", "none"});
  EXPECT_EQ(Header(dir / "train.jsonl")["counts"]["total"], 4);

  // Some failed items: exit code 3 and a summary by reason.
  fs::copy(kSamples / "folder", dir / "folder", fs::copy_options::recursive);
  testing::WriteFile(dir / "folder/bad.jpg", "xx");
  r = RunCli({"index", "--root", (dir / "folder").string(), "--out", (dir / "f.jsonl").string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("corrupt_image"), std::string::npos) << r.output;

  // Run-level errors: not a corpus (1), bad options (2).
  fs::create_directories(dir / "empty");
  r = RunCli({"index", "--root", (dir / "empty").string(), "--out", (dir / "e.jsonl").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("not a corpus"), std::string::npos) << r.output;
  r = RunCli({"index", "--root", (dir / "empty").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  r = RunCli({"index", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--landmark-origin"), std::string::npos);
}

TEST(MakeSamplesCli, WritesAllLayouts) {
  TempDir dir;
  auto r = RunCli({"make-samples", "--out", dir.path().string(), "--seed", "11"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* p : {"300W-LP/AFW", "300W-LP/LFPW_Flip", "300W-LP/landmarks/AFW", "AFLW2000/image00002.mat",
                        "CelebA/list_eval_partition.txt", "CelebA/identity_CelebA.txt", "folder/group/pair.pts"})
    EXPECT_TRUE(fs::exists(dir / p)) << p;
  r = RunCli({"index", "--root", (dir / "300W-LP").string(), "--out", (dir / "m.jsonl").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace facebatch
