#pragma once
// Latent fitting (issue 7; paper section 4: "SGD on f_A and L with the initial
// parameters estimated by our encoder", "high-fidelity reconstruction by solely
// optimizing latent representations"): per batch of B crops, the encoder gives
// f_S, f_A, M, L; then Adam (or SGD) refines a chosen subset of them with
//   photometric l2,1 (eq. 4) of the rendered pairing(s) (default I(S, A)), plus
//   lambda_f x the perceptual loss (eqs. 5-6) when --loss.perceptual > 0 (term "photometric" = L_rec)
//   + landmark alignment (eq. 7; 68 or 5 points per image)
//   + optional latent priors (mean f^2; not in the paper),
// each image on its own (fit/Optimiser.h MinimiseBatch: per-image Adam state,
// convergence, early exit, divergence recovery with step reduction).
//
// Tensor layouts (float32, model device), S = model.config().image_size:
//   images     [B, 3, S, S] RGB in [0, 1] (crops resized to S, see io::CropFace(size = S))
//   landmarks  [B, 73, 2] in crop pixels (facebatch convention: origin at the centre of the
//              top-left pixel, y down): rows 0-67 the iBUG-68 points, rows 68-72 the 5-point
//              set (eye centres, nose tip, mouth corners); landmark_weights [B, 73] selects
//              which rows an image has (1/0). Build them with PackLandmarks().
// The model's parameters are frozen (requires_grad false) and it is put in eval mode.
#include <ATen/Tensor.h>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fit/LossWeights.h"
#include "fit/Optimiser.h"
#include "model/FaceModel.h"

namespace facebatch::fit {

/// Number of landmark rows of a packed target: 68 iBUG points then 5 points.
constexpr int kPackedLandmarks = 73;

/// Latents that can be optimised.
enum LatentSet : unsigned {
  kLatentShape = 1u << 0,       ///< f_S
  kLatentAlbedo = 1u << 1,      ///< f_A
  kLatentProjection = 1u << 2,  ///< M
  kLatentLighting = 1u << 3,    ///< L
  kAllLatents = 15u,
};
/// "all" or a comma list of shape, albedo, projection, lighting (UsageError otherwise).
unsigned ParseLatentSet(const std::string& text);

/// Stages of the fit schedule (FitOptions::schedule).
enum FitStage : unsigned {
  kStagePose = 1u << 0,        ///< M in closed form from the landmarks
  kStageAppearance = 1u << 1,  ///< f_A and L on the photometric term
  kStageJoint = 1u << 2,       ///< every latent asked for
};
/// Stage 4 (opt-in, FitOptions::refine) has no bit: it runs after the schedule.
/// "coarse-to-fine", "joint" or a comma list of pose, appearance, joint (UsageError otherwise).
unsigned ParseSchedule(const std::string& text);
std::string LatentSetToString(unsigned set);

struct FitOptions {
  /// The schedule (issue 15; docs/fit.md "Schedule"), coarse to fine as
  /// model-based face fitters do it:
  ///  1. pose: M in closed form from the landmarks and the landmark vertices of
  ///     the encoder's shape (EstimateWeakPerspective, eq. 7 without gradient steps);
  ///  2. appearance: `appearance_steps` iterations on f_A and L alone (photometric
  ///     term; S and M held), step `appearance_step_size`;
  ///  3. joint: `steps` iterations on every latent of `optimise` (photometric +
  ///     landmark terms), step `step_size`.
  /// Each stage stops per image on convergence. The value is "coarse-to-fine"
  /// (= "pose,appearance,joint"), "joint" (stage 3 only, from the encoder's
  /// estimate: the paper's plain latent optimisation), or any comma list of
  /// pose, appearance, joint (run in that order).
  std::string schedule = "coarse-to-fine";
  int appearance_steps = 30;
  double appearance_step_size = 0.05;
  /// Which pixels the photometric term compares (robustness to what the face
  /// model cannot explain: hair, glasses, hands, background at the silhouette):
  /// "landmarks": the rendered face pixels inside the face region outlined by
  /// the 68 landmarks (jaw line and brows, the brows lifted to take in the
  /// forehead; images with 5 points use every rendered pixel); "rendered":
  /// every rendered face pixel (the paper's eq. 4).
  std::string photometric_region = "landmarks";
  /// Outlier rejection: at the start of stages 2 and 3 a pixel whose residual
  /// ||I(S, A) - input||_2 exceeds this times the image's median residual (over
  /// the region; at least 0.1) is left out of that stage's photometric term
  /// (0: off).
  double outlier_threshold = 3.0;
  /// Optimiser iterations per image of the joint stage (0: encoder only, the regression
  /// mode: no stage runs).
  int steps = 40;
  /// Stage 4, residual refinement (issue 15 item 4; beyond the paper, opt-in): after
  /// the latent stages, the residual maps Delta S and Delta A of eq. 14 become free
  /// per-pixel unknowns (initialised from the decoders' residual, so 0 steps changes
  /// nothing), with the proxies S~, A~, M and L held: S = S~ + Delta S, A = A~ + Delta A.
  /// The objective is the photometric term of I(S, A) (no landmark term: a per-vertex
  /// residual would pull the 68 landmark vertices alone onto the annotations) under
  /// the paper's regularisers: eqs. 8-10 on the residual maps (as eq. 13 applies them to
  /// the proxies in training; on S and A they would flatten the held proxies' own
  /// structure): symmetry of Delta A (8), its constancy under the chromaticity of the input
  /// unwrapped through M (9), the Laplacian of Delta S (10); eq. 14 (|Delta S|_1,
  /// |Delta A|_1, tying S and A to their proxies) and eq. 16 (symmetry of Delta S_z where
  /// the face is hidden), weighted by weights.albedo_symmetry, albedo_constancy,
  /// shape_smoothness, residual_shape, residual_albedo, residual_symmetry (the fit's
  /// defaults: DefaultFitWeights). The written maps then carry what the latent space
  /// cannot (schemas/shard.md: root attribute refine_steps).
  bool refine = false;
  int refine_steps = 30;
  double refine_step_size = 0.01;
  /// The outlier rejection of stage 4 (as outlier_threshold, re-estimated at its start; 0: off).
  /// Its own value because stage 4 exists to fit what the latents cannot (brows, eyes, marks),
  /// which are exactly the pixels a low threshold leaves out; a larger one still drops
  /// occluders (docs/fit.md "Residual refinement").
  double refine_outlier_threshold = 3.0;
  /// Which latents the optimiser changes: "all" or a comma list of
  /// shape, albedo, projection, lighting (paper section 4 fits albedo,lighting).
  std::string optimise = "all";
  std::string method = "adam";  ///< adam | sgd
  /// Initial step per image of the joint stage (the paper trains at 0.001). 0.05, measured on
  /// 32 held-out synthetic faces (docs/fit.md "Measurement"): landmark NME (inter-ocular)
  /// 0.036 / 0.016 / 0.016 and l2,1 0.054 / 0.049 / 0.050 at 0.01 / 0.05 / 0.1.
  double step_size = 0.05;
  double relative_tolerance = 1e-4;  ///< convergence: relative loss change per iteration ...
  int patience = 5;                  ///< ... for this many consecutive iterations
  double step_reduction = 0.5;       ///< divergence: restore best state, multiply the step by this
  int max_step_reductions = 3;       ///< then the image is recorded as diverged
  /// Benchmarks (`facebatch bench`): wait for the device (CUDA) before each clock
  /// read of FitTiming's per-stage split, so asynchronous kernels are charged to
  /// their stage. Off in the fit job (a sync per stage costs throughput on a GPU);
  /// on the CPU it changes nothing.
  bool synchronize_timing = false;
  /// Loss weights (bound as --loss.*); pairings default to "fit" (I(S, A)).
  LossWeights weights = DefaultFitWeights();
  static LossWeights DefaultFitWeights();
  void Check() const;  ///< UsageError on bad values
  MinimiseOptions Minimise() const;
};

/// Names of the objective's terms for `weights`, in evaluation order, then "total"
/// (photometric, landmark, shape_prior, albedo_prior; "zero" when every weight is 0).
std::vector<std::string> ObjectiveTermNames(const LossWeights& weights);
/// The terms a fit records (FitResult::term_names): ObjectiveTermNames, and with
/// FitOptions::refine the refinement's regularisers before "total" (albedo_symmetry,
/// albedo_constancy, shape_smoothness, residual_shape, residual_albedo,
/// residual_symmetry: those with a weight > 0).
std::vector<std::string> FitTermNames(const FitOptions& options);
/// The decoder heads an objective with `weights` reads: the proxies only when a
/// pairing of eq. 15 renders one (the fit's default I(S, A) needs the true heads alone).
model::Heads DecoderHeads(const LossWeights& weights);

/// Packs per-image landmarks (crop pixels of a crop of width `crop_size`)
/// rescaled to `image_size`: returns {landmarks [B, 73, 2], weights [B, 73]}.
/// points[b] has 68 or 5 (x, y) pairs (other counts: no landmark term).
std::pair<at::Tensor, at::Tensor> PackLandmarks(const std::vector<std::vector<std::array<double, 2>>>& points,
                                                int image_size, int crop_size);

struct FitResult {
  at::Tensor f_shape, f_albedo, projection, lighting;  ///< fitted (best state), detached
  model::DecodedMaps shape, albedo;                    ///< decoded from the fitted latents, detached
  at::Tensor shape_vertices;       ///< [B, N, 3] model space
  at::Tensor screen_vertices;      ///< [B, N, 2] projected by M into the S x S model image
  at::Tensor photometric;          ///< [B] final l2,1 error (eq. 4) of I(S, A) over covered pixels
  at::Tensor landmark_error;       ///< [B] mean landmark distance in model-image pixels (NaN without landmarks)
  at::Tensor finite_input;         ///< [B] bool: the input image was finite
  std::vector<FitSummary> summaries;
  std::vector<std::string> term_names;  ///< unweighted terms of the objective, in order, then "total"
};

/// Time spent per phase over the fits of one Fitter (seconds, summed over calls).
/// encode: the encoder; optimise: the whole optimiser loop (MinimiseBatch), of which
/// objective (objective_calls evaluations: iterations + 1 + re-evaluations after a
/// restore) splits into decode (D_S and D_A), render (the pairing(s)) and losses
/// (loss terms, landmark projection); backward: the backward passes (one per
/// iteration); the rest of optimise is the optimiser step and its bookkeeping;
/// finish: the final decode, render and metrics. Clock reads only (cheap); on CUDA
/// the split is exact with FitOptions::synchronize_timing (backward's asynchronous
/// tail is then charged to the step, the sum of the two stays exact).
struct FitTiming {
  double encode = 0, objective = 0, optimise = 0, finish = 0;
  double decode = 0, render = 0, losses = 0, backward = 0;
  double refine = 0;  ///< of optimise: stage 4 (FitOptions::refine), its evaluations included
  int64_t objective_calls = 0;
  int64_t iterations = 0;  ///< optimiser loop passes (the batch's most iterations per image), summed over calls
};

class Fitter {
 public:
  /// `model` is used as is (share nothing with other threads: one Fitter per worker).
  Fitter(model::FaceModel model, FitOptions options);
  /// Fits a batch. `interrupted` is polled once per iteration (stops every image: kInterrupted).
  FitResult Fit(const at::Tensor& images, const at::Tensor& landmarks, const at::Tensor& landmark_weights,
                std::function<bool()> interrupted = {});
  /// Fits from a given initialisation instead of the encoder's (tests, warm starts).
  FitResult FitFrom(const model::Encoding& init, const at::Tensor& images, const at::Tensor& landmarks,
                    const at::Tensor& landmark_weights, std::function<bool()> interrupted = {});
  const FitOptions& options() const { return options_; }
  const model::FaceModel& model() const { return model_; }
  const FitTiming& timing() const { return timing_; }

 private:
  model::FaceModel model_;
  FitOptions options_;
  unsigned latents_ = kAllLatents;
  unsigned stages_ = kStagePose | kStageAppearance | kStageJoint;
  FitTiming timing_;
  std::shared_ptr<PerceptualLoss> perceptual_;  ///< eq. 5 network when --loss.perceptual > 0
};

/// Weak-perspective pose of M [B, 2, 4] (rows m1, m2 of the 2x3 part; image y down):
/// scale s = (|m1| + |m2|) / 2, rotation rows r1 = m1/|m1|, r2 = -m2/|m2| (back to y up),
/// r3 = r1 x r2, orthonormalised; R = Rz(roll) Ry(yaw) Rx(pitch), angles in radians;
/// translation = M[:, :, 3] in image pixels. Returns [B, 6]: yaw, pitch, roll, scale, tx, ty.
at::Tensor PoseFromProjection(const at::Tensor& projection);

}  // namespace facebatch::fit
