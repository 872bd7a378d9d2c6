#pragma once
// `facebatch train`: the learning objective of Tran, Liu, Liu (CVPR 2019),
// sections 3-4, on top of fit/Losses.h (eqs. 4-16) and model/FaceModel.h.
//
// Two phases (section 4):
//  1. pre-training (steps < pretrain_steps) with supervised losses where
//     synthetic ground truth exists ("similar to [45]", Tran & Liu 2018): the
//     landmark loss (eq. 7) plus M, L, shape- and albedo-map errors against the
//     ground truth of the ground-truth file (Data.h);
//  2. the full objective: eq. 15 (reconstruction of the pairings
//     I(S~,A~), I(S~,A), I(S,A~) with the l2,1 loss of eq. 4 (+ eq. 5 when a
//     perceptual network is given), no loss on I(S, A)), the regularisers of
//     eq. 13 on the proxies (albedo symmetry eq. 8, albedo constancy eq. 9 with
//     chromaticity weights of the input unwrapped to UV, shape smoothness eq. 10),
//     residual magnitude (eq. 14), residual soft symmetry with T (eq. 16), and
//     the landmark loss (eq. 7) on the encoder.
//  A model without proxies (ablations "nonlinear", "gl") gets the regularisers
//  on the true maps and I(S, A) as reconstruction (Tran & Liu 2018); a linear
//  model trains its encoder only (the PCA bases are buffers, not parameters).
#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fit/LossTerms.h"
#include "fit/LossWeights.h"
#include "train/Data.h"
#include "train/LatentTargets.h"

namespace facebatch::model {
class FaceModel;
}

namespace facebatch::train {

/// Weights of the supervised pre-training terms (phase 1), bound as
/// "pretrain.<field>". The landmark term uses loss.landmark.
struct PretrainWeights {
  double projection = 1.0;  ///< mean ((M - M_gt) / m_std)^2 over M's 8 entries
  double lighting = 1.0;    ///< mean ((L - L_gt) / l_std)^2 over L's 27 entries
  double shape = 1.0;       ///< masked mean l1 (cm) of S and S~ against the GT shape map
  double albedo = 10.0;     ///< masked mean l1 of A and A~ against the GT albedo map
  /// Latent targets (train/LatentTargets.h): mean squared error of the encoder's
  /// f_S / f_A against the item's PCA code of its ground-truth map.
  double latent_shape = 1.0;
  double latent_albedo = 1.0;
  /// Items with ground truth are decoded from their target codes (not from the
  /// encoder) in pre-training, so the decoders learn code -> map while the encoder
  /// learns image -> code.
  bool teacher_forcing = true;
  void Check() const;
};

struct TrainOptions {
  std::string manifest;       ///< training manifest (`facebatch index`)
  std::string model_in;       ///< start from this model file, or
  std::string preset;         ///< create a fresh model of this preset (paper | demo)
  std::string ablation;       ///< with --preset: nonlinear | gl | gl-proxy ("" = the preset's)
  std::string kind;           ///< with --preset: nonlinear | linear ("" = nonlinear)
  std::string out;            ///< output directory
  std::string val_manifest;   ///< held-out manifest; empty: hold out val_fraction of `manifest`
  double val_fraction = 0.05; ///< fraction of the items held out when val_manifest is empty
  int64_t steps = 1000;       ///< total optimisation steps (pre-training included)
  int64_t pretrain_steps = 200;  ///< steps of phase 1 (supervised; needs ground truth for M/L/maps)
  int64_t batch = 8;
  double lr = 0.001;          ///< Adam learning rate (paper: 0.001)
  std::string lr_schedule = "step";  ///< constant | step (x lr_decay every lr_decay_steps) | cosine
  double lr_decay = 0.5;
  int64_t lr_decay_steps = 0;  ///< 0: steps / 3
  double clip_grad_norm = 10.0;  ///< global gradient norm clip (0: off)
  std::string device = "cpu";  ///< cpu | cuda | cuda:N
  int threads = 0;             ///< compute threads (0: all cores)
  int loader_threads = 2;      ///< data loading threads
  int prefetch = 4;            ///< batches loaded ahead
  uint64_t seed = 1;           ///< model init, data order, validation split
  bool resume = false;         ///< continue from <out>/checkpoint exactly
  /// Stop after this many steps with a checkpoint (0: run to `steps`), e.g. to
  /// fit a SLURM time limit; continue later with `resume`. The schedule still
  /// follows `steps`.
  int64_t stop_at = 0;
  int64_t checkpoint_every = 100;
  int64_t val_every = 100;     ///< 0: validate only at the end
  int64_t val_batches = 4;     ///< batches per validation (0: whole split)
  int64_t log_every = 10;
  bool set_normalisation = true;  ///< set the model's M/L statistics from the training ground truth
  bool use_ground_truth = true;
  /// Shape targets: "similarity" (each GT shape similarity-aligned onto the mean
  /// shape, M adjusted: Dataset::NormaliseShapeTargets) or "raw".
  std::string shape_targets = "similarity";
  /// Ground-truth items whose maps make the latent targets' PCA (0: no latent targets).
  int64_t latent_target_items = 2000;
  /// Read the latent targets from DIR/latent_targets_{shape,albedo}.pt (an earlier
  /// run's output directory) instead of building them: an encoder stage must regress
  /// the very codes its decoders learned in that run.
  std::string latent_targets;
  /// What trains: "all" (encoder and decoders), "encoder" (the decoders frozen,
  /// their BatchNorm statistics included) or "decoders" (the encoder frozen).
  /// With "encoder", pre-training does not run the decoders at all: the encoder
  /// regresses the latent targets, M and L, and the landmark term projects the
  /// ground-truth shape's landmarks by its M. A step then costs the encoder alone
  /// (the encoder stage of pipelines/train-demo-encoder.ini). With "decoders",
  /// pre-training does not run the encoder: D_S and D_A decode the items' latent
  /// targets (teacher forcing) and learn code -> map from the ground-truth maps alone
  /// (`gt_shape`, `gt_albedo`; the decoder stage of pipelines/train-demo-decoders.ini);
  /// it needs latent targets and has no full phase (steps == pretrain_steps).
  std::string train_parts = "all";
  bool EncoderOnly() const { return train_parts == "encoder"; }
  bool DecodersOnly() const { return train_parts == "decoders"; }
  fit::LossWeights loss;
  PretrainWeights pretrain;
  Augmentation augment;        ///< of the training items (train/Data.h), bound as "augment.<field>"
  std::string command;         ///< recorded in the model's provenance
  void Check() const;          ///< UsageError naming the option
};

/// The two phases.
enum class Phase { kPretrain, kFull };
const char* PhaseName(Phase phase);

/// The names of every term that can appear, in CSV column order.
const std::vector<std::string>& TermNames();
/// Header of losses.csv / validation.csv:
/// step,phase,lr,total,<TermNames()>,metric_l21,metric_shape_l1,grad_norm,seconds
std::string CsvHeader();

/// Evaluates the objective of `phase` on a batch (tensors on the model's
/// device). With metrics, also renders I(S, A) and adds "metric_l21" (the
/// paper's Table 1 l2,1 distance, weight 0) and, with ground truth,
/// "metric_shape_l1" (weight 0).
fit::LossTerms ComputeObjective(const model::FaceModel& model, const Batch& batch, Phase phase,
                                const TrainOptions& options, const fit::PerceptualLoss* perceptual = nullptr,
                                bool metrics = false);

/// The encoder stage (--train-parts encoder) regresses codes that its frozen decoders
/// must understand, and the decoder stage (--train-parts decoders) goes on teaching
/// them the same codes: decodes the targets of up to 64 ground-truth items and throws a
/// UsageError when the shape is not much closer to the truth than the mean face (the
/// targets of another run), after logging both errors.
void CheckTargetsMatchTheDecoders(model::FaceModel& model, const Dataset& dataset, const LatentTargets& targets,
                                  uint64_t seed);

/// M/L statistics (mean, std per entry) of the ground truth of `dataset`
/// (M in crop coordinates); false when fewer than 2 items have ground truth.
bool GroundTruthNormalisation(const Dataset& dataset, at::Tensor& m_mean, at::Tensor& m_std, at::Tensor& l_mean,
                              at::Tensor& l_std);

/// Draws loss curves (log10 of the positive values of the given columns of a
/// losses CSV, training and optional validation) into a PNG.
void PlotLossCurves(const std::string& train_csv, const std::string& val_csv, const std::string& png_path);

struct TrainSummary {
  std::string model_path;       ///< <out>/model.h5
  std::string csv_path, val_csv_path, plot_path;
  int64_t start_step = 0;       ///< 0, or the checkpoint's step when resumed
  int64_t steps = 0;            ///< step count reached
  bool stopped_early = false;   ///< stop_at reached before `steps` (checkpoint written, no model.h5)
  double seconds_per_step = 0;  ///< mean wall time of the steps of this run
  std::map<std::string, double> last_train;  ///< last step's term means
  std::map<std::string, double> last_val;    ///< last validation's term means
  std::string weights_sha256;
};

/// Runs the training (see TrainOptions). Writes <out>/model.h5,
/// <out>/losses.csv, <out>/validation.csv, <out>/losses.png and
/// <out>/checkpoint/{model.h5,optimizer.pt,state.json}.
TrainSummary RunTrain(const TrainOptions& options);

}  // namespace facebatch::train
