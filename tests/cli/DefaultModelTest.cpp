// The committed default model (samples/models/default.h5) loads and beats an
// untrained model of the same preset by a wide margin on held-out synthetic
// images (the samples' 300W-LP and AFLW2000 corpora were not in its training
// set: other seeds), with the encoder alone (fit --steps 0) and the real
// fit -> eval pipeline.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "TestSupport.h"

namespace facebatch {
namespace {
namespace fs = std::filesystem;
using testing::RunCli;
using testing::TempDir;

double MeanMetric(const fs::path& summary, const char* metric) {
  std::ifstream in(summary);
  nlohmann::json j;
  in >> j;
  return j.at("metrics").at(metric).at("all").at("mean").get<double>();
}

// Encoder-only fits of `corpus` with `model`, evaluated: the summary.json path.
fs::path EncoderEval(const TempDir& dir, const std::string& corpus, const std::string& model, const std::string& tag) {
  const fs::path manifest = dir / (corpus + ".jsonl");
  if (!fs::exists(manifest)) {
    auto ix = RunCli({"index", "--root", std::string(FACEBATCH_SAMPLES) + "/" + corpus, "--out", manifest.string(),
                      "--progress", "none"});
    EXPECT_EQ(ix.exit_code, 0) << ix.output;
  }
  const fs::path fits = dir / ("fit-" + corpus + "-" + tag);
  auto fit = RunCli({"fit", "--manifest", manifest.string(), "--model", model, "--out", fits.string(), "--steps", "0",
                     "--batch", "4", "--progress", "none"});
  EXPECT_EQ(fit.exit_code, 0) << fit.output;
  const fs::path eval = dir / ("eval-" + corpus + "-" + tag);
  auto ev = RunCli({"eval", (fits / "shard-00000-of-00001.h5").string(), "--manifest", manifest.string(), "--out",
                    eval.string()});
  EXPECT_EQ(ev.exit_code, 0) << ev.output;
  return eval / "summary.json";
}

TEST(DefaultModel, BeatsAnUntrainedModelByAWideMargin) {
  const std::string trained = std::string(FACEBATCH_SAMPLES) + "/models/default.h5";
  ASSERT_TRUE(fs::exists(trained)) << trained;
  TempDir dir;
  auto info = RunCli({"model", "info", trained});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("preset:          demo"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("synthetic ground truth"), std::string::npos) << info.output;
  const std::string untrained = (dir / "untrained.h5").string();
  ASSERT_EQ(RunCli({"model", "init", "--preset", "demo", "--seed", "0", "--out", untrained}).exit_code, 0);
  for (const std::string corpus : {"300W-LP", "AFLW2000"}) {
    SCOPED_TRACE(corpus);
    const auto a = EncoderEval(dir, corpus, trained, "trained");
    const auto b = EncoderEval(dir, corpus, untrained, "untrained");
    const double l21_trained = MeanMetric(a, "l21"), l21_untrained = MeanMetric(b, "l21");
    const double nme_trained = MeanMetric(a, "nme_io"), nme_untrained = MeanMetric(b, "nme_io");
    std::cout << corpus << ": encoder l2,1 " << l21_trained << " vs untrained " << l21_untrained << "; landmark NME "
              << nme_trained << " vs " << nme_untrained << "\n";
    EXPECT_LT(l21_trained, 0.6 * l21_untrained);
    EXPECT_LT(nme_trained, 0.5 * nme_untrained);
  }
}

}  // namespace
}  // namespace facebatch
