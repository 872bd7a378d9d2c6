// `facebatch eval-model`: thin command over train::RunModelEval (lib/train/ModelEval.h).
#include <cstdio>
#include <string>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "train/ModelEval.h"

namespace facebatch::tools {

int RunEvalModelCommand(int argc, char** argv) {
  train::ModelEvalOptions opts;
  cli::CommandParser parser(
      "eval-model",
      "facebatch eval-model --model M.h5 --manifest HELDOUT.jsonl [--ground-truth GT.h5] --out DIR "
      "[--protocol encoder,texture,shape|all] [--steps N] [--max-images N] [--batch B]",
      "Evaluates a model on a held-out synthetic corpus with ground truth (docs/ablation.md): the encoder's "
      "reconstruction (Table 1's l2,1 metric, shape NME), the Table 1 texture protocol (ground-truth geometry and "
      "M fixed, f_A and L optimised from the encoder's estimate) and the section 4.2 shape protocol (f_S fitted to "
      "the ground-truth mesh, NME by inter-ocular distance). Writes DIR/model_eval.csv (per image) and "
      "DIR/model_eval.json (summary) and prints a table.");
  namespace po = cli::po;
  parser.options().add_options()
      ("model", po::value(&opts.model)->default_value(opts.model), "model file (facebatch train / model init)")
      ("manifest", po::value(&opts.manifest)->default_value(opts.manifest), "held-out manifest (facebatch index)")
      ("ground-truth", po::value(&opts.ground_truth)->default_value(opts.ground_truth),
       "ground-truth file (default: <manifest root>/facebatch_ground_truth.h5)")
      ("out", po::value(&opts.out)->default_value(opts.out), "output directory")
      ("protocol", po::value(&opts.protocol)->default_value(opts.protocol),
       "all, or a comma list of encoder, texture, shape")
      ("steps", po::value(&opts.steps)->default_value(opts.steps),
       "optimisation iterations of the texture and shape protocols (per image; may stop earlier on convergence)")
      ("max-images", po::value(&opts.max_images)->default_value(opts.max_images),
       "evaluate the first N usable items (0: all)")
      ("batch", po::value(&opts.batch)->default_value(opts.batch), "images per batch")
      ("method", po::value(&opts.method)->default_value(opts.method), "optimiser: adam | sgd")
      ("texture-step-size", po::value(&opts.texture_step_size)->default_value(opts.texture_step_size),
       "step size on f_A and L (texture protocol)")
      ("shape-step-size", po::value(&opts.shape_step_size)->default_value(opts.shape_step_size),
       "step size on f_S (shape protocol)")
      ("normal-weight", po::value(&opts.normal_weight)->default_value(opts.normal_weight),
       "weight of the normal cosine distance in the shape protocol's objective")
      ("tolerance", po::value(&opts.tolerance)->default_value(opts.tolerance),
       "stop an image early when its objective changes by less than this (relative) for 5 iterations "
       "(0: every image runs exactly --steps)")
      ("device", po::value(&opts.device)->default_value(opts.device), "cpu | cuda | cuda:N")
      ("threads", po::value(&opts.threads)->default_value(opts.threads), "compute threads (0: all cores)")
      ("progress", po::value(&opts.progress)->default_value(opts.progress), "auto | bar | log | none");
  if (!parser.Parse(argc, argv)) return kExitOk;
  opts.Check();
  auto s = train::RunModelEval(opts);
  std::printf("%swrote %s, %s\n", s.Table().c_str(), s.csv_path.c_str(), s.json_path.c_str());
  return s.failed > 0 ? kExitSomeFailed : kExitOk;
}

}  // namespace facebatch::tools
