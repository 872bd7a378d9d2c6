// `facebatch bench` end to end on a tiny model (never asserts speed: only that every
// stage is measured, positive, and that the figures are consistent with each other).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::RunCli;

TEST(BenchCli, TinyModelReportsEveryStageAndTheyAddUp) {
  testing::TempDir dir;
  const auto model = (dir / "tiny.h5").string();
  auto init = RunCli({"model", "init", "--preset", "demo", "--uv", "24x28", "--template", "synthetic", "--out", model,
                      "--threads", "1"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  const auto json = (dir / "bench.json").string();
  auto r = RunCli({"bench", "--model", model, "--batch", "2", "--iterations", "3", "--threads", "1,2", "--json", json});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* s : {"image decode", "crop", "encoder", "decode maps (D_S, D_A)", "render I(S, A)", "backward",
                        "optimiser step", "HDF5 write (shard writer)", "total (measured)", "images/s", "ratio",
                        "thread scaling", "peak RSS", "machine:"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;

  const auto j = nlohmann::json::parse(testing::ReadFile(json));
  EXPECT_EQ(j.at("format"), "facebatch-bench");
  EXPECT_EQ(j.at("version"), 1);
  ASSERT_EQ(j.at("presets").size(), 1u);
  const auto& p = j.at("presets")[0];
  EXPECT_EQ(p.at("batch"), 2);
  EXPECT_EQ(p.at("uv_rows"), 24);
  EXPECT_GT(p.at("peak_rss_mib").get<double>(), 0.0);
  // Counted work (issue 16): five network passes whose layers add up, and per run the achieved
  // rate, the same-run sgemm rate and their ratio, consistent with one another.
  ASSERT_EQ(p.at("networks").size(), 5u);
  double decoders = 0;
  for (const auto& n : p.at("networks")) {
    double sum = 0;
    for (const auto& l : n.at("layers")) sum += l.at("flops").get<double>();
    EXPECT_NEAR(sum, n.at("flops").get<double>(), 1e-6 * sum) << n.at("name");
    EXPECT_GT(n.at("flops").get<double>(), 0.0) << n.at("name");
    if (n.at("name") != "encoder_forward") decoders += n.at("flops").get<double>();
  }
  EXPECT_NEAR(p.at("flops_per_iteration").get<double>(), decoders, 1e-6 * decoders);
  for (const auto& run : p.at("runs")) {
    const double achieved = run.at("achieved_gflops"), gemm = run.at("gemm_gflops");
    EXPECT_GT(achieved, 0.0);
    EXPECT_GT(gemm, 0.0);
    EXPECT_NEAR(run.at("gemm_fraction").get<double>(), achieved / gemm, 1e-9);
    EXPECT_NEAR(achieved * 1e9 * run.at("iteration_seconds").get<double>(), decoders, 1e-6 * decoders);
  }
  EXPECT_NE(r.output.find("GFLOP"), std::string::npos) << r.output;
  // Training steps (issue 14 item 7, issue 16 item 4): both phases and the encoder and
  // decoder stages' pre-training, at the most threads.
  ASSERT_EQ(p.at("train").size(), 4u);
  EXPECT_EQ(p.at("train")[0].at("phase"), "pretrain");
  EXPECT_EQ(p.at("train")[1].at("phase"), "full");
  EXPECT_EQ(p.at("train")[2].at("phase"), "encoder");
  EXPECT_EQ(p.at("train")[3].at("phase"), "decoders");
  // The encoder stage runs no decoder and the decoder stage no encoder: each counts fewer
  // FLOPs than a joint pre-training step, which runs the encoder and both decoders.
  const double joint_flops = p.at("train")[0].at("flops_per_step").get<double>();
  const double encoder_flops = p.at("train")[2].at("flops_per_step").get<double>();
  const double decoders_flops = p.at("train")[3].at("flops_per_step").get<double>();
  EXPECT_GT(encoder_flops, 0.0);
  EXPECT_GT(decoders_flops, 0.0);
  EXPECT_LT(encoder_flops, joint_flops);
  EXPECT_LT(decoders_flops, joint_flops);
  for (const auto& t : p.at("train")) {
    EXPECT_EQ(t.at("threads"), 2);
    EXPECT_EQ(t.at("batch"), 8);
    const double sps = t.at("seconds_per_step");
    ASSERT_GT(sps, 0.0);
    EXPECT_NEAR(t.at("images_per_second").get<double>(), 8 / sps, 1e-9 * 8 / sps);
    EXPECT_GT(t.at("reference_seconds").get<double>(), 0.0);
    // A joint step does more than the decoders (the encoder, the objective): at least their FLOPs.
    if (t.at("phase") != "encoder")
      EXPECT_GT(t.at("flops_per_step").get<double>(), p.at("flops_per_iteration").get<double>());
    EXPECT_NEAR(t.at("gemm_fraction").get<double>(),
                t.at("achieved_gflops").get<double>() / t.at("gemm_gflops").get<double>(), 1e-9);
  }
  EXPECT_NE(r.output.find("train step (full"), std::string::npos) << r.output;
  // The pass at the fit's defaults: one batch, at the most threads, coarse to fine.
  const auto& d = p.at("default_fit");
  EXPECT_EQ(d.at("threads"), 2);
  EXPECT_EQ(d.at("batches"), 1);
  EXPECT_EQ(d.at("schedule"), "coarse-to-fine");
  EXPECT_GT(d.at("images_per_second").get<double>(), 0.0);
  EXPECT_GT(d.at("iterations_per_image").get<double>(), 0.0);
  EXPECT_LE(d.at("iterations_per_image").get<double>(), 70.0);  // 30 appearance + 40 joint at most
  EXPECT_NE(r.output.find("fit at the `facebatch fit` defaults"), std::string::npos) << r.output;
  // The inference levers (issue 16): five cumulative settings from none to all, each timed,
  // and the fit at its defaults with every lever off beside the run above (all on).
  const auto& lv = p.at("levers");
  EXPECT_EQ(lv.at("threads"), 2);
  ASSERT_EQ(lv.at("steps").size(), 5u);
  const auto& none = lv.at("steps")[0];
  EXPECT_EQ(none.at("name"), "none");
  EXPECT_FALSE(none.at("fold_batchnorm").get<bool>() || none.at("channels_last").get<bool>() ||
               none.at("skip_unused_proxy_heads").get<bool>() || none.at("transposed_as_phases").get<bool>());
  const auto& all = lv.at("steps")[4];
  EXPECT_TRUE(all.at("fold_batchnorm").get<bool>() && all.at("channels_last").get<bool>() &&
              all.at("skip_unused_proxy_heads").get<bool>() && all.at("transposed_as_phases").get<bool>());
  for (const auto& st : lv.at("steps")) {
    const double sec = st.at("decoders_seconds");
    ASSERT_GT(sec, 0.0) << st.at("name");
    EXPECT_NEAR(st.at("speedup").get<double>(), none.at("decoders_seconds").get<double>() / sec, 1e-9 / sec);
  }
  const double without = lv.at("default_fit_without").at("images_per_second");
  const double with = lv.at("default_fit_with").at("images_per_second");
  ASSERT_GT(without, 0.0);
  EXPECT_GT(with, 0.0);
  EXPECT_EQ(lv.at("default_fit_with").at("batches"), 1);
  EXPECT_NEAR(lv.at("default_fit_speedup").get<double>(), with / without, 1e-9 / without);
  for (const auto& st : lv.at("steps")) EXPECT_GT(st.at("fit_iteration_seconds").get<double>(), 0.0);
  EXPECT_NE(r.output.find("inference levers"), std::string::npos) << r.output;
  ASSERT_EQ(p.at("runs").size(), 2u);
  EXPECT_EQ(p.at("runs")[0].at("threads"), 1);
  EXPECT_EQ(p.at("runs")[1].at("threads"), 2);
  for (const auto& run : p.at("runs")) {
    const double total = run.at("total_seconds");
    ASSERT_GT(total, 0.0);
    EXPECT_NEAR(run.at("images_per_second").get<double>(), 2.0 / total, 1e-9 * 2.0 / total);
    double sum = 0;
    for (const char* s : {"image_decode", "crop", "encoder", "iterations", "finish", "hdf5_write"}) {
      ASSERT_TRUE(run.at("batch_stages").contains(s)) << s;
      const double v = run.at("batch_stages").at(s);
      EXPECT_GT(v, 0.0) << s;
      sum += v;
    }
    // The stages are disjoint parts of the measured pass: they add up to no more than it.
    EXPECT_LE(sum, total * 1.001 + 1e-4);
    EXPECT_NEAR(run.at("other_seconds").get<double>(), total - sum, 1e-9 + 1e-6 * total);
    double per_iteration = 0;
    for (const char* s : {"decode_maps", "render", "losses", "backward", "optimiser_step"}) {
      ASSERT_TRUE(run.at("iteration_stages").contains(s)) << s;
      const double v = run.at("iteration_stages").at(s);
      EXPECT_GT(v, 0.0) << s;
      per_iteration += v;
    }
    EXPECT_NEAR(run.at("iteration_seconds").get<double>(), per_iteration, 1e-9);
    // No early exit: every iteration runs; the objective is evaluated once more than that (at least).
    const int iterations = run.at("iterations"), evaluations = run.at("objective_evaluations");
    EXPECT_EQ(iterations, 3);
    EXPECT_GE(evaluations, iterations + 1);
    // The iteration stages account for the whole optimiser loop of the batch.
    const auto& it = run.at("iteration_stages");
    const double loop = evaluations * (it.at("decode_maps").get<double>() + it.at("render").get<double>() +
                                       it.at("losses").get<double>()) +
                        iterations * (it.at("backward").get<double>() + it.at("optimiser_step").get<double>());
    EXPECT_NEAR(loop, run.at("batch_stages").at("iterations").get<double>(), 1e-6 + 1e-6 * loop);
    const double reference = run.at("reference_seconds");
    ASSERT_GT(reference, 0.0);
    EXPECT_NEAR(run.at("ratio").get<double>(), per_iteration / reference, 1e-9 * per_iteration / reference);
    const double overhead = it.at("render").get<double>() + it.at("losses").get<double>() +
                            it.at("optimiser_step").get<double>();
    EXPECT_NEAR(run.at("overhead_fraction").get<double>(), overhead / per_iteration, 1e-9);
  }
  EXPECT_NEAR(p.at("runs")[0].at("speedup").get<double>(), 1.0, 1e-12);
}

TEST(BenchCli, BadOptionsAndMissingInputs) {
  testing::TempDir dir;
  EXPECT_EQ(RunCli({"bench", "--preset", "huge"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--threads", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--threads", "1,x"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--batch", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--iterations", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--default-fit-batches", "-1"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--train-steps", "-1"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--train-batch", "0"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--levers", "2"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--device", "tpu"}).exit_code, 2);
  EXPECT_EQ(RunCli({"bench", "--help"}).exit_code, 0);
  const auto missing = (dir / "no-such-corpus").string();
  auto r = RunCli({"bench", "--samples", missing, "--threads", "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;
  auto m = RunCli({"bench", "--model", (dir / "no-model.h5").string(), "--threads", "1"});
  EXPECT_EQ(m.exit_code, 1) << m.output;
  // Without CUDA: a clear error (with CUDA the missing corpus stops it): exit 1 either way.
  auto c = RunCli({"bench", "--device", "cuda", "--samples", missing, "--threads", "1"});
  EXPECT_EQ(c.exit_code, 1) << c.output;
}

}  // namespace
}  // namespace facebatch
