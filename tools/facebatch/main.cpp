// The `facebatch` binary: a table of commands (see Commands.h).
#include <vector>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Env.h"

int main(int argc, char** argv) {
  facebatch::env::EnsurePassiveOpenMP(argv);  // see Env.h: idle OpenMP threads must not spin
  facebatch::env::TuneAllocator();  // see Env.h: keep freed tensor memory for the next iteration
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
      {"merge", "merge the completed shard files of a fit into one HDF5 file (virtual datasets or --copy)", &facebatch::tools::RunMergeCommand},
      {"status", "report done/running/failed/missing shards of a fit and the --array list to resubmit", &facebatch::tools::RunStatusCommand},
      {"export", "export fitted meshes (obj, ply, glb), UV maps or QA overlays from shard files", &facebatch::tools::RunExportCommand},
      {"eval", "the paper's metrics (l2,1, landmark NME, shape NME) of fit outputs, by yaw bin", &facebatch::tools::RunEvalCommand},
      {"report", "a static HTML QA page of fit outputs (contact sheet, histograms, worst fits, failures)", &facebatch::tools::RunReportCommand},
      {"bench", "measure throughput and a per-stage breakdown of the fit on this machine", &facebatch::tools::RunBenchCommand},
      {"eval-model", "evaluate a model on held-out synthetic ground truth (Table 1 texture, section 4.2 shape)", &facebatch::tools::RunEvalModelCommand},
      {"linear-model", "build a linear (PCA) model from a synthetic corpus's ground-truth maps (the ablation's Linear row)", &facebatch::tools::RunLinearModelCommand},
  };
  return facebatch::cli::Dispatch(table, argc, argv);
}
