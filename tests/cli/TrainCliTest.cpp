// `facebatch train`: help, usage errors and a missing manifest (the training
// itself is tested in tests/train through RunTrain).
#include <gtest/gtest.h>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(TrainCli, HelpListsTheOptionsAndLossWeights) {
  auto r = RunCli({"train", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"--manifest", "--model-in", "--preset", "--pretrain-steps", "--lr", "--resume",
                        "--val-manifest", "--device", "--loss.residual_symmetry", "--pretrain.albedo"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
}

TEST(TrainCli, UsageErrorsAndMissingFiles) {
  testing::TempDir dir;
  auto r = RunCli({"train", "--manifest", "m.jsonl", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // neither --model-in nor --preset
  r = RunCli({"train", "--manifest", "m.jsonl", "--preset", "demo", "--out", (dir / "o").string(), "--lr", "-1"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  auto missing = (dir / "missing.jsonl").string();
  r = RunCli({"train", "--manifest", missing, "--preset", "demo", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
}

TEST(TrainCli, CommittedPipelinesParse) {
  // Every option and [section] of the committed INI files is known (a bad key
  // would be a usage error, exit 2); the run then fails on the missing manifest.
  testing::TempDir dir;
  const std::string root = FACEBATCH_SAMPLES "/../pipelines/";
  auto r = RunCli({"train", "--config", root + "train-demo.ini", "--manifest", (dir / "none.jsonl").string(),
                   "--preset", "demo", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("none.jsonl"), std::string::npos) << r.output;
  for (const char* f : {"train-paper-300wlp.ini", "train-paper-celeba.ini"}) {
    r = RunCli({"train", "--config", root + f, "--manifest", (dir / "none.jsonl").string(), "--preset", "paper",
                "--out", (dir / "o").string(), "--device", "cpu"});
    EXPECT_EQ(r.exit_code, 1) << f << "\n" << r.output;
  }
  // The default model's encoder stages (2, 3 and 5) and its decoder stage (4).
  for (const char* f : {"train-demo-encoder.ini", "train-demo-encoder-stage3.ini", "train-demo-decoders.ini",
                        "train-demo-encoder-stage5.ini"}) {
    r = RunCli({"train", "--config", root + f, "--manifest", (dir / "none.jsonl").string(), "--model-in",
                FACEBATCH_SAMPLES "/models/default.h5", "--latent-targets", (dir / "targets").string(), "--out",
                (dir / "o").string()});
    EXPECT_EQ(r.exit_code, 1) << f << "\n" << r.output;
    EXPECT_NE(r.output.find("none.jsonl"), std::string::npos) << f << "\n" << r.output;
  }
}

}  // namespace
}  // namespace facebatch
