// `facebatch eval`: the paper's metrics over fit outputs (lib/eval/Eval.h, docs/eval.md).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "eval/Eval.h"

namespace facebatch::tools {

int RunEvalCommand(int argc, char** argv) {
  eval::EvalOptions o;
  cli::CommandParser p(
      "eval", "facebatch eval INPUT.h5... --manifest M.jsonl [--ground-truth GT.h5] --out DIR",
      "Evaluates fit outputs (shard files, merged files, or directories of them) with the paper's metrics:\n"
      "l2,1 reconstruction error of the re-rendered I(S, A) against the input crop over the rendered face\n"
      "(Table 1), landmark NME normalised by the inter-ocular distance and by the box size sqrt(w h), and\n"
      "the shape NME against ground-truth meshes (section 4.2). Writes DIR/per_image.csv and\n"
      "DIR/summary.json (mean, median, p90, p95 overall and by |yaw| bin 0-30, 30-60, 60-90) and prints a table.");
  namespace po = cli::po;
  p.options().add_options()
      ("input", po::value(&o.inputs)->multitoken(), "fit output files or directories (positional)")
      ("manifest", po::value(&o.manifests)->multitoken(), "manifest(s) the fits were made from (required)")
      ("ground-truth", po::value(&o.ground_truth)->multitoken(),
       "ground-truth file(s) (default: each manifest root's facebatch_ground_truth.h5 when present)")
      ("out", po::value(&o.out), "output directory (required)")
      ("shape-alignment", po::value(&o.shape_alignment)->default_value(o.shape_alignment),
       "similarity or none: alignment of the fitted shape to the ground truth before the shape NME")
      ("threads", po::value(&o.threads)->default_value(o.threads), "CPU threads (0: all cores)")
      ("progress", po::value(&o.progress)->default_value(o.progress), "auto, bar, log or none");
  p.Positional("input", -1);
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  auto s = eval::RunEval(o);
  std::cout << s.Table();
  return kExitOk;
}

}  // namespace facebatch::tools
