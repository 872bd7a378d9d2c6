// The `facebatch` binary: a table of commands (see Commands.h).
#include <vector>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Env.h"

int main(int argc, char** argv) {
  facebatch::env::EnsurePassiveOpenMP(argv);  // see Env.h: idle OpenMP threads must not spin
  using facebatch::cli::Command;
  static const std::vector<Command> table = {
      {"index", "read a corpus (300W-LP, AFLW2000-3D, CelebA, folder) into a manifest", &facebatch::tools::RunIndexCommand},
      {"shards", "print how a manifest splits into N shards", &facebatch::tools::RunShardsCommand},
      {"make-samples", "write the small sample corpora (samples/)", &facebatch::tools::RunMakeSamplesCommand},
      {"model", "create (init) or describe (info) a face model file", &facebatch::tools::RunModelCommand},
      {"render-template", "render the default face template to PNGs (poses x lights)", &facebatch::tools::RunRenderTemplateCommand},
      {"train", "train a face model with the paper's objective (pre-training, proxies, residuals)", &facebatch::tools::RunTrainCommand},
      {"synth", "render a synthetic face corpus (300W-LP, AFLW2000-3D, CelebA layout) with ground truth", &facebatch::tools::RunSynthCommand},
      {"fit", "fit one shard of a manifest and write its HDF5 file (resumable)", &facebatch::tools::RunFitCommand},
      {"validate", "check a shard file against its documented schema", &facebatch::tools::RunValidateCommand},
      {"inspect", "summarise a shard, manifest or model file", &facebatch::tools::RunInspectCommand},
      {"eval-model", "evaluate a model on held-out synthetic ground truth (Table 1 texture, section 4.2 shape)", &facebatch::tools::RunEvalModelCommand},
      {"linear-model", "build a linear (PCA) model from a synthetic corpus's ground-truth maps (the ablation's Linear row)", &facebatch::tools::RunLinearModelCommand},
  };
  return facebatch::cli::Dispatch(table, argc, argv);
}
