#pragma once
// The real pipeline on the synthetic samples/AFLW2000 corpus (images rendered from
// known ground truth, facebatch_ground_truth.h5 at its root) for the eval and report
// CLI tests: index -> model init (demo, untrained) -> fit (2 steps) -> eval.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "TestSupport.h"

namespace facebatch::testing {

struct EvalPipeline {
  TempDir dir{"facebatch-eval-cli"};
  std::string manifest, shard, eval_dir;
  CliResult eval;

  /// Runs the pipeline; returns false (with a gtest failure) when a step fails.
  bool Run() {
    manifest = (dir / "aflw.jsonl").string();
    auto r = RunCli({"index", "--root", FACEBATCH_SAMPLES "/AFLW2000", "--out", manifest, "--progress", "none"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    const auto model = (dir / "model.h5").string();
    r = RunCli({"model", "init", "--preset", "demo", "--seed", "0", "--out", model});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    r = RunCli({"fit", "--manifest", manifest, "--model", model, "--out", (dir / "fit").string(), "--shard", "0/1",
                "--steps", "2", "--batch", "4", "--threads", "2", "--progress", "none"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    shard = (dir / "fit" / "shard-00000-of-00001.h5").string();
    eval_dir = (dir / "eval").string();
    eval = RunCli({"eval", shard, "--manifest", manifest, "--out", eval_dir, "--progress", "none", "--threads", "2"});
    EXPECT_EQ(eval.exit_code, 0) << eval.output;
    return !::testing::Test::HasFailure();
  }
};

}  // namespace facebatch::testing
