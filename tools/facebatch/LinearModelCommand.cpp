// `facebatch linear-model`: thin command over train::RunLinearModel (lib/train/ModelEval.h).
#include <cstdio>
#include <string>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "train/ModelEval.h"

namespace facebatch::tools {

int RunLinearModelCommand(int argc, char** argv) {
  train::LinearModelOptions opts;
  cli::CommandParser parser(
      "linear-model", "facebatch linear-model --ground-truth GT.h5 --out F.h5 [--preset demo] [--rank-shape K]",
      "Builds a linear (PCA) face model from the ground-truth shape and albedo maps of a synthetic corpus: the "
      "Linear baseline of the paper's ablation (docs/ablation.md). Its encoder is untrained: train it with "
      "`facebatch train --model-in F.h5` (only the encoder trains).");
  namespace po = cli::po;
  parser.options().add_options()
      ("ground-truth", po::value(&opts.ground_truth)->default_value(opts.ground_truth),
       "facebatch_ground_truth.h5 of a training corpus (facebatch synth)")
      ("preset", po::value(&opts.preset)->default_value(opts.preset), "paper | demo (encoder, image and UV size)")
      ("rank-shape", po::value(&opts.rank_shape)->default_value(opts.rank_shape),
       "shape components (0: the preset's latent size), at most maps - 1")
      ("rank-albedo", po::value(&opts.rank_albedo)->default_value(opts.rank_albedo),
       "albedo components (0: the preset's latent size), at most maps - 1")
      ("max-maps", po::value(&opts.max_maps)->default_value(opts.max_maps), "use the first N rows (0: all)")
      ("seed", po::value(&opts.seed)->default_value(opts.seed), "encoder initialisation seed")
      ("out", po::value(&opts.out)->default_value(opts.out), "output model file")
      ("threads", po::value(&opts.threads)->default_value(opts.threads), "compute threads (0: all cores)");
  if (!parser.Parse(argc, argv)) return kExitOk;
  opts.command = "facebatch";
  for (int i = 0; i < argc; ++i) opts.command += std::string(" ") + argv[i];
  opts.Check();
  auto s = train::RunLinearModel(opts);
  std::printf("wrote %s: PCA of %lld maps, %d shape components (%.1f%% of the variance), %d albedo (%.1f%%)\n"
              "weights sha256: %s\n",
              s.path.c_str(), static_cast<long long>(s.maps), s.rank_shape, 100 * s.explained_shape, s.rank_albedo,
              100 * s.explained_albedo, s.weights_sha256.c_str());
  return kExitOk;
}

}  // namespace facebatch::tools
