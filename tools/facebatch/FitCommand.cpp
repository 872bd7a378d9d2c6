// `facebatch fit`: fit one shard of a manifest and write its HDF5 file (lib/batch/FitJob.h).
#include <cstdio>
#include <string>

#include "Commands.h"
#include "batch/FitJob.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "fit/LossWeights.h"

namespace facebatch::tools {

int RunFitCommand(int argc, char** argv) {
  batch::FitJobOptions o;
  cli::CommandParser p(
      "fit",
      "facebatch fit --manifest M --model F --out DIR --shard i/N|auto [--num-shards N] [--batch B] [--steps S] "
      "[--device cpu|cuda|cuda:K] [--devices all|LIST] [--outputs ...] [--dtype f32|f16] [--overwrite]",
      "Fits every ok item of one shard: encoder initialisation of f_S, f_A, M, L, then per-image Adam/SGD on the\n"
      "photometric l2,1 (eq. 4) and landmark (eq. 7) losses, and writes <out>/shard-IIIII-of-NNNNN.h5\n"
      "(schemas/shard.md). Rerunning the same command resumes; SIGTERM/SIGUSR1 stop after the batch in flight\n"
      "with exit code 75 (incomplete, requeue me). Exit 3 when the shard finished with failed items.");
  namespace po = cli::po;
  auto& fo = o.fit;
  p.options().add_options()
      ("manifest", po::value(&o.manifest), "manifest written by `facebatch index` (required)")
      ("model", po::value(&o.model), "model file (required)")
      ("out", po::value(&o.out), "output directory (required)")
      ("shard", po::value(&o.shard)->default_value(o.shard), "i/N (0-based) or auto ($SLURM_ARRAY_TASK_ID, needs --num-shards)")
      ("num-shards", po::value(&o.num_shards)->default_value(o.num_shards), "N (required with --shard auto)")
      ("batch", po::value(&o.batch)->default_value(o.batch), "images per fit batch")
      ("schedule", po::value(&fo.schedule)->default_value(fo.schedule), "coarse-to-fine (= pose,appearance,joint: pose from the landmarks, then albedo and lighting, then all latents) | joint (all latents from the encoder's estimate) | a comma list of pose, appearance, joint")
      ("appearance-steps", po::value(&fo.appearance_steps)->default_value(fo.appearance_steps), "coarse-to-fine: iterations on albedo and lighting with shape and pose held")
      ("appearance-step-size", po::value(&fo.appearance_step_size)->default_value(fo.appearance_step_size), "coarse-to-fine: step size of the appearance stage")
      ("steps", po::value(&fo.steps)->default_value(fo.steps), "iterations of the joint stage per image (0: encoder only, no stage runs)")
      ("refine", po::bool_switch(&fo.refine), "after the latent fit, refine the shape and albedo residual maps per pixel under the paper's regularisers (eqs. 8-10, 14, 16; weights --loss.albedo_symmetry ... --loss.residual_symmetry); the written maps carry the refinement")
      ("refine-steps", po::value(&fo.refine_steps)->default_value(fo.refine_steps), "--refine: iterations of the residual refinement")
      ("refine-step-size", po::value(&fo.refine_step_size)->default_value(fo.refine_step_size), "--refine: step size of the residual refinement (model units and albedo per iteration)")
      ("refine-outlier-threshold", po::value(&fo.refine_outlier_threshold)->default_value(fo.refine_outlier_threshold), "--refine: the outlier rejection of the refinement (times the median residual at its start; 0: off)")
      ("photometric-region", po::value(&fo.photometric_region)->default_value(fo.photometric_region), "landmarks (face region outlined by the 68 landmarks, forehead included) | rendered (every rendered face pixel)")
      ("outlier-threshold", po::value(&fo.outlier_threshold)->default_value(fo.outlier_threshold), "leave out pixels whose residual exceeds this times the image's median, re-estimated per stage (0: off)")
      ("optimise", po::value(&fo.optimise)->default_value(fo.optimise), "latents to optimise: all or a comma list of shape, albedo, projection, lighting")
      ("method", po::value(&fo.method)->default_value(fo.method), "adam | sgd")
      ("step-size", po::value(&fo.step_size)->default_value(fo.step_size), "initial step size per image of the joint stage (coarse-to-fine: after the pose and appearance stages)")
      ("tolerance", po::value(&fo.relative_tolerance)->default_value(fo.relative_tolerance), "convergence: relative loss change per iteration")
      ("patience", po::value(&fo.patience)->default_value(fo.patience), "convergence: consecutive calm iterations")
      ("max-step-reductions", po::value(&fo.max_step_reductions)->default_value(fo.max_step_reductions), "divergence recoveries before an image fails")
      ("device", po::value(&o.device)->default_value(o.device), "cpu | cuda | cuda:K")
      ("devices", po::value(&o.devices)->default_value(o.devices), "all | comma list of devices: one worker each (overrides --device/--workers)")
      ("workers", po::value(&o.workers)->default_value(o.workers), "CPU workers (each with its own model copy; threads are split between them); 0 = auto: one single-threaded worker per thread for models up to the demo preset's size, one worker with every thread for larger ones")
      ("outputs", po::value(&o.outputs)->default_value(o.outputs), "all | none | comma list of shape, shape_proxy, albedo, albedo_proxy, shape_residual, albedo_residual, vertices")
      ("dtype", po::value(&o.dtype)->default_value(o.dtype), "f32 | f16 storage of UV maps and vertices")
      ("part-size", po::value(&o.part_size)->default_value(o.part_size), "images per closed part file (a kill loses at most these)")
      ("threads", po::value(&o.threads)->default_value(o.threads), "compute threads in all (0 = all cores)")
      ("progress", po::value(&o.progress)->default_value(o.progress), "auto | bar | log | none")
      ("overwrite", po::bool_switch(&o.overwrite), "start the shard over (discard its finished parts and file); refused while another process holds the shard's lock");
  fit::AddLossOptions(p.options(), fo.weights, "loss");
  if (!p.Parse(argc, argv)) return kExitOk;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "facebatch ") + std::string(argv[i]);
  o.config_text = p.EffectiveConfig();
  o.Check();
  auto s = batch::RunFitJob(o);
  std::printf("%s\n", s.ToString().c_str());
  return s.ExitCode();
}

}  // namespace facebatch::tools
