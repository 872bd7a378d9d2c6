#pragma once
// Batched per-image optimisation of latents (issue 7): every parameter tensor
// is [B, ...] and holds B independent problems (images) that share one
// forward/backward pass. Per image: its own Adam moments and step count, its
// own step size, an active flag (converged or failed images stop changing,
// bitwise), best-state snapshots, a convergence test and divergence detection.
// Plus FitSummary (like Ceres's Solver::Summary) and MinimiseBatch, the loop
// that ties them together around an objective callback.
#include "fit/LossTerms.h"

#include <ATen/Tensor.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace facebatch::fit {

enum class OptimiserMethod { kAdam, kSGD };
const char* OptimiserMethodName(OptimiserMethod method);
/// "adam" or "sgd" (UsageError otherwise).
OptimiserMethod ParseOptimiserMethod(const std::string& text);

struct OptimiserOptions {
  OptimiserMethod method = OptimiserMethod::kAdam;
  /// Initial step size (learning rate) of every image. The paper trains with
  /// Adam at 0.001 (section 4); latent fitting takes larger steps (0.01).
  double step_size = 0.01;
  double beta1 = 0.9;      ///< Adam first-moment decay
  double beta2 = 0.999;    ///< Adam second-moment decay
  double epsilon = 1e-8;   ///< Adam denominator guard
  double momentum = 0.0;   ///< SGD momentum (0: plain SGD)
  void Check() const;      ///< UsageError on bad values
};

/// The per-image optimisation state: parameters, moments, update counts.
/// Step sizes and active flags are controls, not state: Restore leaves them.
struct OptimiserState {
  std::vector<at::Tensor> params;         ///< [B, ...] each
  std::vector<at::Tensor> first_moment;   ///< Adam m / SGD momentum buffer
  std::vector<at::Tensor> second_moment;  ///< Adam v (undefined for SGD)
  at::Tensor steps;                       ///< [B] int64: updates applied per image
};

class BatchOptimiser {
 public:
  /// params: leaf tensors with requires_grad, each [B, ...] with the same B,
  /// dtype float32/float64, on one device. They are updated in place.
  BatchOptimiser(std::vector<at::Tensor> params, OptimiserOptions options);

  int64_t batch_size() const { return batch_; }
  const std::vector<at::Tensor>& params() const { return params_; }
  const OptimiserOptions& options() const { return options_; }

  /// Zeroes (or drops) the parameters' gradients.
  void ZeroGrad();
  /// One update from the parameters' .grad() (undefined grad counts as 0) for
  /// the active images whose gradients are all finite. Inactive images, and
  /// images with a non-finite gradient, keep parameters, moments and step
  /// count bitwise unchanged. Returns [B] bool (on the parameters' device):
  /// which images were updated.
  at::Tensor Step();

  /// [B] bool on the parameters' device: images that still change.
  const at::Tensor& active() const { return active_; }
  void SetActive(const at::Tensor& active);
  /// Images where `images` ([B] bool) is true stop changing.
  void Deactivate(const at::Tensor& images);
  /// [B] float64 on the parameters' device.
  const at::Tensor& step_sizes() const { return step_sizes_; }
  void SetStepSizes(const at::Tensor& step_sizes);
  /// Multiplies the step size of the images in `images` by `factor`.
  void ScaleStepSizes(const at::Tensor& images, double factor);
  /// [B] int64: updates applied per image.
  const at::Tensor& steps() const { return steps_; }

  /// Deep copy of the state.
  OptimiserState Snapshot() const;
  /// Copies the current state of the images in `images` ([B] bool) into
  /// `state` (a previous Snapshot()), e.g. to keep each image's best state.
  void UpdateSnapshot(OptimiserState& state, const at::Tensor& images) const;
  /// Restores the images in `images` ([B] bool; undefined: all) from `state`,
  /// exactly (parameters, moments, step counts).
  void Restore(const OptimiserState& state, const at::Tensor& images = {});
  /// Zeroes the moments (and step counts) of the images in `images`.
  void ResetMoments(const at::Tensor& images);

 private:
  at::Tensor BatchMask(const at::Tensor& images, const char* what) const;

  std::vector<at::Tensor> params_, m_, v_;
  OptimiserOptions options_;
  int64_t batch_ = 0;
  at::Tensor active_, step_sizes_, steps_;
};

/// Per-image convergence test and divergence detection on the total loss.
struct ConvergenceOptions {
  /// Converged when |L_prev - L| <= relative_tolerance * max(|L_prev|, 1e-12)
  /// for `patience` consecutive iterations.
  double relative_tolerance = 1e-4;
  int patience = 5;
  /// Diverging when the loss is non-finite, or above
  /// best + rise_tolerance * max(|best|, initial - best) for `rise_patience`
  /// consecutive iterations (a rise relative to the best loss or to the
  /// progress made, whichever is larger).
  double rise_tolerance = 0.5;
  int rise_patience = 3;
  void Check() const;
};

class ConvergenceMonitor {
 public:
  ConvergenceMonitor(int64_t batch, ConvergenceOptions options);

  struct Update {
    at::Tensor improved;   ///< [B] bool (CPU): new best loss (snapshot now)
    at::Tensor converged;  ///< [B] bool: converged at this observation
    at::Tensor diverged;   ///< [B] bool: non-finite or rising loss now
    at::Tensor nonfinite;  ///< [B] bool: the loss is NaN/inf now
  };
  /// Observes the loss [B] of the current parameters (any device/dtype) for
  /// the images in `active` ([B] bool, undefined: all); others are ignored.
  Update Observe(const at::Tensor& loss, const at::Tensor& active = {});
  /// After restoring the best state of `images`: the previous loss becomes
  /// the best loss and the counters restart.
  void ResetToBest(const at::Tensor& images);

  const at::Tensor& best_loss() const { return best_; }            ///< [B] float64 CPU
  const at::Tensor& best_iteration() const { return best_iter_; }  ///< [B] int64 (observation index)
  int64_t observations() const { return observations_; }

 private:
  ConvergenceOptions options_;
  int64_t observations_ = 0;
  at::Tensor initial_, prev_, best_, best_iter_, calm_, rising_;
};

/// Why a fit stopped (per image).
enum class Termination {
  kConverged,      ///< the relative loss change stayed below tolerance
  kMaxIterations,  ///< the iteration budget was used up (the best state is kept)
  kNoIterations,   ///< no iteration was asked for (--steps 0: encoder only)
  kDiverged,       ///< the loss kept rising/became non-finite after every step reduction
  kNonFinite,      ///< the initial loss was NaN/inf: nothing to optimise
  kInterrupted,    ///< stopped from outside (signal)
};
const char* TerminationName(Termination t);

/// The result of one image's fit (like Ceres's Solver::Summary).
struct FitSummary {
  Termination termination = Termination::kNoIterations;
  std::string message;
  std::map<std::string, double> initial_terms;  ///< unweighted terms + "total"
  std::map<std::string, double> final_terms;    ///< of the returned (best) state
  double initial_loss = 0.0;                    ///< weighted total
  double final_loss = 0.0;
  int iterations = 0;        ///< optimiser updates applied
  int best_iteration = 0;    ///< update count of the returned state
  int step_reductions = 0;   ///< divergence recoveries
  double final_step_size = 0.0;
  double seconds = 0.0;      ///< wall time of the batch (shared by its images)

  /// True unless the fit diverged or never had a finite loss.
  bool IsUsable() const;
  /// "converged after 42 iterations: total 0.31 -> 0.052"
  std::string BriefReport() const;
  /// Multi-line report with every term.
  std::string FullReport() const;
};

/// Options of MinimiseBatch.
struct MinimiseOptions {
  int max_iterations = 100;
  OptimiserOptions optimiser;
  ConvergenceOptions convergence;
  /// On divergence: restore the image's best state and multiply its step by this.
  double step_reduction = 0.5;
  /// After this many reductions the image is recorded as kDiverged.
  int max_step_reductions = 3;
  /// Polled once per iteration; true stops every image (kInterrupted).
  std::function<bool()> interrupted;
  void Check() const;
};

/// Evaluates the objective for the current parameters (called with autograd on).
using ObjectiveFn = std::function<LossTerms()>;

/// Minimises `objective` over `params` (leaf tensors [B, ...] with
/// requires_grad, updated in place) per image: each image stops on its own
/// (convergence, divergence after max_step_reductions, or the budget) and
/// ends in its best state. Returns one FitSummary per image.
std::vector<FitSummary> MinimiseBatch(const std::vector<at::Tensor>& params,
                                      const ObjectiveFn& objective, const MinimiseOptions& options);

}  // namespace facebatch::fit
