// `facebatch eval-model`: help, usage errors and a missing model file (the
// protocols themselves are tested in tests/train/ModelEvalTest.cpp through
// RunModelEval; scripts/ablation.sh runs the binary end to end).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(EvalModelCli, HelpListsTheOptions) {
  auto r = RunCli({"eval-model", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"--model", "--manifest", "--ground-truth", "--out", "--protocol", "--steps", "--max-images",
                        "--batch", "--method", "--normal-weight", "--tolerance"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s;
  r = RunCli({"help"});
  EXPECT_NE(r.output.find("eval-model"), std::string::npos) << r.output;
}

TEST(EvalModelCli, UsageErrorsAndMissingFiles) {
  testing::TempDir dir;
  auto r = RunCli({"eval-model", "--manifest", "m.jsonl", "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // no --model
  r = RunCli({"eval-model", "--model", "m.h5", "--manifest", "m.jsonl", "--out", (dir / "o").string(), "--protocol",
              "colour"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("colour"), std::string::npos) << r.output;
  const auto missing = (dir / "missing.jsonl").string();
  r = RunCli({"eval-model", "--model", (dir / "m.h5").string(), "--manifest", missing, "--out", (dir / "o").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.jsonl"), std::string::npos) << r.output;
}

TEST(EvalModelCli, AblationPipelinesParse) {
  // Every key of pipelines/ablation-*.ini is a known train option (a bad key
  // would be a usage error, exit 2); the run then fails on the missing manifest.
  testing::TempDir dir;
  const std::string root = FACEBATCH_SAMPLES "/../pipelines/";
  for (const std::string kind : {"linear", "nonlinear", "gl", "gl-proxy"}) {
    std::vector<std::string> args = {"train", "--config", root + "ablation-" + kind + ".ini", "--manifest",
                                     (dir / "none.jsonl").string(), "--out", (dir / "o").string()};
    if (kind == "linear") args.insert(args.end(), {"--model-in", (dir / "pca.h5").string()});
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << kind << "\n" << r.output;
    EXPECT_NE(r.output.find("none.jsonl"), std::string::npos) << kind << "\n" << r.output;
  }
  auto r = RunCli({"linear-model", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--rank-shape"), std::string::npos) << r.output;
  r = RunCli({"linear-model", "--ground-truth", (dir / "gt.h5").string(), "--out", (dir / "m.h5").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("gt.h5"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch
