// `facebatch train`: thin command over train::RunTrain (lib/train/Trainer.h).
#include <cstdio>
#include <string>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "fit/LossWeights.h"
#include "train/Trainer.h"

namespace facebatch::tools {

int RunTrainCommand(int argc, char** argv) {
  train::TrainOptions opts;
  cli::CommandParser parser(
      "train", "facebatch train --manifest M.jsonl --model-in F.h5|--preset P --out DIR [--config pipelines/x.ini]",
      "Trains a face model with the paper's objective (docs/train.md): supervised pre-training on synthetic "
      "ground truth, then reconstruction of the eq. 15 pairings with the proxy/residual regularisers. Writes "
      "DIR/model.h5, losses.csv, validation.csv, losses.png and DIR/checkpoint/ (exact --resume).");
  namespace po = cli::po;
  parser.options().add_options()
      ("manifest", po::value(&opts.manifest)->default_value(opts.manifest), "training manifest (facebatch index)")
      ("model-in", po::value(&opts.model_in)->default_value(opts.model_in), "start from this model file")
      ("preset", po::value(&opts.preset)->default_value(opts.preset), "or start from a fresh model: paper | demo")
      ("kind", po::value(&opts.kind)->default_value(opts.kind), "with --preset: nonlinear | linear")
      ("ablation", po::value(&opts.ablation)->default_value(opts.ablation), "with --preset: nonlinear | gl | gl-proxy")
      ("out", po::value(&opts.out)->default_value(opts.out), "output directory")
      ("val-manifest", po::value(&opts.val_manifest)->default_value(opts.val_manifest),
       "held-out manifest (default: hold out --val-fraction of --manifest)")
      ("val-fraction", po::value(&opts.val_fraction)->default_value(opts.val_fraction), "held-out fraction")
      ("steps", po::value(&opts.steps)->default_value(opts.steps), "total steps (pre-training included)")
      ("pretrain-steps", po::value(&opts.pretrain_steps)->default_value(opts.pretrain_steps),
       "steps of supervised pre-training")
      ("batch", po::value(&opts.batch)->default_value(opts.batch), "images per step")
      ("lr", po::value(&opts.lr)->default_value(opts.lr), "Adam learning rate (paper: 0.001)")
      ("lr-schedule", po::value(&opts.lr_schedule)->default_value(opts.lr_schedule), "constant | step | cosine")
      ("lr-decay", po::value(&opts.lr_decay)->default_value(opts.lr_decay), "step schedule factor")
      ("lr-decay-steps", po::value(&opts.lr_decay_steps)->default_value(opts.lr_decay_steps),
       "step schedule period (0: steps / 3)")
      ("clip-grad-norm", po::value(&opts.clip_grad_norm)->default_value(opts.clip_grad_norm),
       "clip the global gradient norm (0: off)")
      ("device", po::value(&opts.device)->default_value(opts.device), "cpu | cuda | cuda:N")
      ("threads", po::value(&opts.threads)->default_value(opts.threads), "compute threads (0: all cores)")
      ("loader-threads", po::value(&opts.loader_threads)->default_value(opts.loader_threads), "data loading threads")
      ("prefetch", po::value(&opts.prefetch)->default_value(opts.prefetch), "batches loaded ahead")
      ("seed", po::value(&opts.seed)->default_value(opts.seed), "model init, data order, validation split")
      ("resume", po::bool_switch(&opts.resume), "continue exactly from DIR/checkpoint")
      ("stop-at", po::value(&opts.stop_at)->default_value(opts.stop_at),
       "stop with a checkpoint after this step (0: run to --steps); continue with --resume")
      ("checkpoint-every", po::value(&opts.checkpoint_every)->default_value(opts.checkpoint_every), "steps")
      ("val-every", po::value(&opts.val_every)->default_value(opts.val_every), "steps (0: at the end only)")
      ("val-batches", po::value(&opts.val_batches)->default_value(opts.val_batches), "batches per validation (0: all)")
      ("log-every", po::value(&opts.log_every)->default_value(opts.log_every), "steps between log lines")
      ("set-normalisation", po::value(&opts.set_normalisation)->default_value(opts.set_normalisation),
       "set the model's M/L statistics from the training ground truth")
      ("use-ground-truth", po::value(&opts.use_ground_truth)->default_value(opts.use_ground_truth),
       "read <corpus root>/facebatch_ground_truth.h5 when present")
      ("pretrain.projection", po::value(&opts.pretrain.projection)->default_value(opts.pretrain.projection),
       "pre-training weight of the M error")
      ("pretrain.lighting", po::value(&opts.pretrain.lighting)->default_value(opts.pretrain.lighting),
       "pre-training weight of the L error")
      ("pretrain.shape", po::value(&opts.pretrain.shape)->default_value(opts.pretrain.shape),
       "pre-training weight of the shape-map error")
      ("pretrain.albedo", po::value(&opts.pretrain.albedo)->default_value(opts.pretrain.albedo),
       "pre-training weight of the albedo-map error")
      ("pretrain.latent_shape", po::value(&opts.pretrain.latent_shape)->default_value(opts.pretrain.latent_shape),
       "pre-training weight of the encoder's f_S error against the item's PCA code (latent targets)")
      ("pretrain.latent_albedo", po::value(&opts.pretrain.latent_albedo)->default_value(opts.pretrain.latent_albedo),
       "pre-training weight of the encoder's f_A error against the item's PCA code")
      ("pretrain.teacher_forcing", po::value(&opts.pretrain.teacher_forcing)->default_value(opts.pretrain.teacher_forcing),
       "pre-training decodes items with ground truth from their target codes (the decoders learn code -> map)")
      ("shape-targets", po::value(&opts.shape_targets)->default_value(opts.shape_targets),
       "similarity (GT shapes similarity-aligned onto the mean shape, M adjusted) | raw")
      ("latent-target-items", po::value(&opts.latent_target_items)->default_value(opts.latent_target_items),
       "ground-truth maps in the PCA of the latent targets (0: none)")
      ("latent-targets", po::value(&opts.latent_targets)->default_value(opts.latent_targets),
       "read the latent targets from DIR/latent_targets_{shape,albedo}.pt (an earlier run's --out) instead of building them")
      ("augment.shift", po::value(&opts.augment.shift)->default_value(opts.augment.shift),
       "training crops: max random translation per axis, fraction of the crop (M and landmarks follow)")
      ("augment.scale", po::value(&opts.augment.scale)->default_value(opts.augment.scale),
       "training crops: max relative random scale change")
      ("augment.rotation", po::value(&opts.augment.rotation)->default_value(opts.augment.rotation),
       "training crops: max random rotation in degrees")
      ("augment.gain", po::value(&opts.augment.gain)->default_value(opts.augment.gain),
       "training crops: max relative random gain per colour channel (L follows)")
      ("train-parts", po::value(&opts.train_parts)->default_value(opts.train_parts),
       "all | encoder (decoders frozen; pre-training then runs the encoder alone against the latent targets) | "
       "decoders (encoder frozen; the decoders learn latent target -> ground-truth map, pre-training only)");
  fit::AddLossOptions(parser.options(), opts.loss, "loss");
  if (!parser.Parse(argc, argv)) return kExitOk;
  opts.command = "facebatch";
  for (int i = 0; i < argc; ++i) opts.command += std::string(" ") + argv[i];
  opts.Check();
  auto s = train::RunTrain(opts);
  std::printf("wrote %s (steps %lld, %.3f s/step)\nlosses: %s, %s, %s\nweights sha256: %s\n", s.model_path.c_str(),
              static_cast<long long>(s.steps), s.seconds_per_step, s.csv_path.c_str(), s.val_csv_path.c_str(),
              s.plot_path.c_str(), s.weights_sha256.c_str());
  return kExitOk;
}

}  // namespace facebatch::tools
