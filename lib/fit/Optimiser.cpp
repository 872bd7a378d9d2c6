#include "fit/Optimiser.h"

#include "core/Error.h"
#include "fit/TensorChecks.h"

#include <torch/torch.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace facebatch::fit {

namespace {

// [B] -> [B, 1, ..., 1] broadcastable against `like`.
at::Tensor PerImage(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = like.size(0);
  return v.view(shape);
}

}  // namespace

const char* OptimiserMethodName(OptimiserMethod method) {
  return method == OptimiserMethod::kAdam ? "adam" : "sgd";
}

OptimiserMethod ParseOptimiserMethod(const std::string& text) {
  if (text == "adam") return OptimiserMethod::kAdam;
  if (text == "sgd") return OptimiserMethod::kSGD;
  throw UsageError("unknown optimiser '" + text + "' (use adam or sgd)");
}

void OptimiserOptions::Check() const {
  auto bad = [](const char* what, double v) {
    throw UsageError(fmt::format("optimiser: {} out of range: {}", what, v));
  };
  if (!(step_size > 0) || !std::isfinite(step_size)) bad("step size (must be > 0)", step_size);
  if (!(beta1 >= 0 && beta1 < 1)) bad("beta1 (must be in [0, 1))", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) bad("beta2 (must be in [0, 1))", beta2);
  if (!(epsilon > 0)) bad("epsilon (must be > 0)", epsilon);
  if (!(momentum >= 0 && momentum < 1)) bad("momentum (must be in [0, 1))", momentum);
}

// ---------------------------------------------------------------------------

BatchOptimiser::BatchOptimiser(std::vector<at::Tensor> params, OptimiserOptions options)
    : params_(std::move(params)), options_(options) {
  options_.Check();
  if (params_.empty()) throw Error("BatchOptimiser: no parameter tensor");
  batch_ = params_.front().defined() && params_.front().dim() > 0 ? params_.front().size(0) : 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    const std::string name = fmt::format("params[{}]", i);
    if (!p.defined() || p.dim() < 1 || p.size(0) != batch_ || batch_ == 0) {
      throw Error(fmt::format("BatchOptimiser: {} must be [B, ...] with B = {}, got {}", name, batch_,
                              ShapeString(p)));
    }
    CheckFloat("BatchOptimiser", name.c_str(), p.view({batch_, -1}), {batch_, -1});
    CheckSameDevice("BatchOptimiser", name.c_str(), p, params_.front());
    if (!p.is_leaf() || !p.requires_grad()) {
      throw Error("BatchOptimiser: " + name + " must be a leaf tensor with requires_grad");
    }
    m_.push_back(torch::zeros_like(p).detach());
    v_.push_back(options_.method == OptimiserMethod::kAdam ? torch::zeros_like(p).detach() : at::Tensor());
  }
  const auto dev = params_.front().device();
  active_ = torch::ones({batch_}, torch::dtype(torch::kBool).device(dev));
  step_sizes_ = torch::full({batch_}, options_.step_size, torch::dtype(torch::kFloat64).device(dev));
  steps_ = torch::zeros({batch_}, torch::dtype(torch::kInt64).device(dev));
}

at::Tensor BatchOptimiser::BatchMask(const at::Tensor& images, const char* what) const {
  if (!images.defined()) return torch::ones_like(active_);
  if (images.dim() != 1 || images.size(0) != batch_ || images.scalar_type() != torch::kBool) {
    throw Error(fmt::format("BatchOptimiser::{}: images must be a bool tensor [{}], got {} {}", what,
                            batch_, c10::toString(images.scalar_type()), ShapeString(images)));
  }
  return images.to(active_.device());
}

void BatchOptimiser::ZeroGrad() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
}

at::Tensor BatchOptimiser::Step() {
  torch::NoGradGuard no_grad;
  auto finite = torch::ones_like(active_);
  for (const auto& p : params_) {
    const auto& g = p.grad();
    if (g.defined()) finite = finite & torch::isfinite(g).view({batch_, -1}).all(1);
  }
  const auto upd = active_ & finite;
  const auto steps_new = torch::where(upd, steps_ + 1, steps_);
  const double b1 = options_.beta1, b2 = options_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    const auto g = p.grad().defined() ? p.grad() : torch::zeros_like(p);
    const auto ub = PerImage(upd, p);
    const auto lr = PerImage(step_sizes_.to(p.scalar_type()), p);
    at::Tensor p_new;
    if (options_.method == OptimiserMethod::kAdam) {
      const auto m_new = b1 * m_[i] + (1.0 - b1) * g;
      const auto v_new = b2 * v_[i] + (1.0 - b2) * g * g;
      const auto t = steps_new.to(torch::kFloat64);
      const auto bc1 = PerImage((1.0 - torch::pow(b1, t)).to(p.scalar_type()), p);
      const auto bc2 = PerImage((1.0 - torch::pow(b2, t)).to(p.scalar_type()), p);
      p_new = p - lr * (m_new / bc1) / ((v_new / bc2).sqrt() + options_.epsilon);
      m_[i].copy_(torch::where(ub, m_new, m_[i]));
      v_[i].copy_(torch::where(ub, v_new, v_[i]));
    } else {
      at::Tensor direction = g;
      if (options_.momentum > 0) {
        const auto buf = options_.momentum * m_[i] + g;
        m_[i].copy_(torch::where(ub, buf, m_[i]));
        direction = buf;
      }
      p_new = p - lr * direction;
    }
    p.copy_(torch::where(ub, p_new, p));
  }
  steps_ = steps_new;
  return upd;
}

void BatchOptimiser::SetActive(const at::Tensor& active) { active_ = BatchMask(active, "SetActive").clone(); }

void BatchOptimiser::Deactivate(const at::Tensor& images) {
  active_ = active_ & ~BatchMask(images, "Deactivate");
}

void BatchOptimiser::SetStepSizes(const at::Tensor& step_sizes) {
  if (!step_sizes.defined() || step_sizes.dim() != 1 || step_sizes.size(0) != batch_) {
    throw Error(fmt::format("BatchOptimiser::SetStepSizes: need [{}], got {}", batch_,
                            ShapeString(step_sizes)));
  }
  step_sizes_ = step_sizes.to(active_.device(), torch::kFloat64).clone();
}

void BatchOptimiser::ScaleStepSizes(const at::Tensor& images, double factor) {
  const auto m = BatchMask(images, "ScaleStepSizes");
  step_sizes_ = torch::where(m, step_sizes_ * factor, step_sizes_);
}

OptimiserState BatchOptimiser::Snapshot() const {
  OptimiserState s;
  for (size_t i = 0; i < params_.size(); ++i) {
    s.params.push_back(params_[i].detach().clone());
    s.first_moment.push_back(m_[i].clone());
    s.second_moment.push_back(v_[i].defined() ? v_[i].clone() : at::Tensor());
  }
  s.steps = steps_.clone();
  return s;
}

namespace {
void CheckState(const OptimiserState& s, size_t n, int64_t batch) {
  if (s.params.size() != n || s.first_moment.size() != n || s.second_moment.size() != n ||
      !s.steps.defined() || s.steps.size(0) != batch) {
    throw Error("BatchOptimiser: the state does not come from this optimiser");
  }
}
}  // namespace

void BatchOptimiser::UpdateSnapshot(OptimiserState& state, const at::Tensor& images) const {
  CheckState(state, params_.size(), batch_);
  torch::NoGradGuard no_grad;
  const auto mask = BatchMask(images, "UpdateSnapshot");
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto mb = PerImage(mask, params_[i]);
    state.params[i].copy_(torch::where(mb, params_[i].detach(), state.params[i]));
    state.first_moment[i].copy_(torch::where(mb, m_[i], state.first_moment[i]));
    if (v_[i].defined()) state.second_moment[i].copy_(torch::where(mb, v_[i], state.second_moment[i]));
  }
  state.steps.copy_(torch::where(mask, steps_, state.steps));
}

void BatchOptimiser::Restore(const OptimiserState& state, const at::Tensor& images) {
  CheckState(state, params_.size(), batch_);
  torch::NoGradGuard no_grad;
  const auto mask = BatchMask(images, "Restore");
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto mb = PerImage(mask, params_[i]);
    params_[i].copy_(torch::where(mb, state.params[i], params_[i]));
    m_[i].copy_(torch::where(mb, state.first_moment[i], m_[i]));
    if (v_[i].defined()) v_[i].copy_(torch::where(mb, state.second_moment[i], v_[i]));
  }
  steps_ = torch::where(mask, state.steps, steps_);
}

void BatchOptimiser::ResetMoments(const at::Tensor& images) {
  torch::NoGradGuard no_grad;
  const auto mask = BatchMask(images, "ResetMoments");
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto mb = PerImage(mask, params_[i]);
    m_[i].masked_fill_(mb, 0.0);
    if (v_[i].defined()) v_[i].masked_fill_(mb, 0.0);
  }
  steps_ = torch::where(mask, torch::zeros_like(steps_), steps_);
}

// ---------------------------------------------------------------------------

void ConvergenceOptions::Check() const {
  if (!(relative_tolerance >= 0)) {
    throw UsageError(fmt::format("convergence: relative tolerance must be >= 0, got {}", relative_tolerance));
  }
  if (patience < 1) throw UsageError(fmt::format("convergence: patience must be >= 1, got {}", patience));
  if (!(rise_tolerance >= 0)) {
    throw UsageError(fmt::format("convergence: rise tolerance must be >= 0, got {}", rise_tolerance));
  }
  if (rise_patience < 1) {
    throw UsageError(fmt::format("convergence: rise patience must be >= 1, got {}", rise_patience));
  }
}

ConvergenceMonitor::ConvergenceMonitor(int64_t batch, ConvergenceOptions options) : options_(options) {
  options_.Check();
  const auto f64 = torch::dtype(torch::kFloat64);
  prev_ = torch::full({batch}, std::numeric_limits<double>::quiet_NaN(), f64);
  best_ = torch::full({batch}, std::numeric_limits<double>::infinity(), f64);
  best_iter_ = torch::full({batch}, -1, torch::dtype(torch::kInt64));
  calm_ = torch::zeros({batch}, torch::dtype(torch::kInt64));
  rising_ = torch::zeros({batch}, torch::dtype(torch::kInt64));
}

ConvergenceMonitor::Update ConvergenceMonitor::Observe(const at::Tensor& loss, const at::Tensor& active) {
  const int64_t batch = best_.size(0);
  if (!loss.defined() || loss.dim() != 1 || loss.size(0) != batch) {
    throw Error(fmt::format("ConvergenceMonitor: loss must be [{}], got {}", batch, ShapeString(loss)));
  }
  const auto l = loss.detach().to(torch::kCPU, torch::kFloat64);
  const auto a = active.defined() ? active.to(torch::kCPU, torch::kBool) : torch::ones({batch}, torch::kBool);
  const auto finite = torch::isfinite(l);
  Update u;
  u.nonfinite = a & ~finite;
  u.improved = a & finite & (l < best_);
  best_ = torch::where(u.improved, l, best_);
  best_iter_ = torch::where(u.improved, torch::full_like(best_iter_, observations_), best_iter_);
  const auto prev_finite = torch::isfinite(prev_);
  const auto small = finite & prev_finite &
                     ((prev_ - l).abs() <= options_.relative_tolerance * prev_.abs().clamp_min(1e-12));
  calm_ = torch::where(a, torch::where(small, calm_ + 1, torch::zeros_like(calm_)), calm_);
  if (observations_ == 0) initial_ = l.clone();
  // The rise is measured against the larger of the best loss and the progress
  // made so far, so that small oscillations near a minimum (Adam at a
  // constant step) do not count as divergence.
  const auto progress = torch::where(torch::isfinite(initial_), initial_ - best_, torch::zeros_like(best_));
  const auto rising_now =
      finite & (l > best_ + options_.rise_tolerance * torch::maximum(best_.abs(), progress));
  rising_ = torch::where(a, torch::where(rising_now, rising_ + 1, torch::zeros_like(rising_)), rising_);
  u.converged = a & finite & (calm_ >= options_.patience);
  u.diverged = u.nonfinite | (a & (rising_ >= options_.rise_patience));
  u.converged = u.converged & ~u.diverged;
  prev_ = torch::where(a, l, prev_);
  ++observations_;
  return u;
}

void ConvergenceMonitor::ResetToBest(const at::Tensor& images) {
  const auto m = images.to(torch::kCPU, torch::kBool);
  prev_ = torch::where(m, best_, prev_);
  calm_ = torch::where(m, torch::zeros_like(calm_), calm_);
  rising_ = torch::where(m, torch::zeros_like(rising_), rising_);
}

// ---------------------------------------------------------------------------

const char* TerminationName(Termination t) {
  switch (t) {
    case Termination::kConverged: return "converged";
    case Termination::kMaxIterations: return "max_iterations";
    case Termination::kNoIterations: return "no_iterations";
    case Termination::kDiverged: return "diverged";
    case Termination::kNonFinite: return "non_finite";
    case Termination::kInterrupted: return "interrupted";
  }
  return "?";
}

bool FitSummary::IsUsable() const {
  return termination != Termination::kDiverged && termination != Termination::kNonFinite &&
         std::isfinite(final_loss);
}

std::string FitSummary::BriefReport() const {
  return fmt::format("{} after {} iterations: total {:.6g} -> {:.6g}{}", TerminationName(termination),
                     iterations, initial_loss, final_loss, message.empty() ? "" : " (" + message + ")");
}

std::string FitSummary::FullReport() const {
  std::string s = fmt::format("Termination: {}\nMessage: {}\nIterations: {} (best state at {})\n",
                              TerminationName(termination), message, iterations, best_iteration);
  s += fmt::format("Step reductions: {}, final step size: {:.6g}\nTime: {:.3f} s\n", step_reductions,
                   final_step_size, seconds);
  s += fmt::format("{:<24}{:>14}{:>14}\n", "term", "initial", "final");
  for (const auto& [name, v0] : initial_terms) {
    auto it = final_terms.find(name);
    s += fmt::format("{:<24}{:>14.6g}{:>14.6g}\n", name, v0,
                     it == final_terms.end() ? std::nan("") : it->second);
  }
  return s;
}

void MinimiseOptions::Check() const {
  if (max_iterations < 0) throw UsageError(fmt::format("iterations must be >= 0, got {}", max_iterations));
  if (!(step_reduction > 0 && step_reduction < 1)) {
    throw UsageError(fmt::format("step reduction must be in (0, 1), got {}", step_reduction));
  }
  if (max_step_reductions < 0) {
    throw UsageError(fmt::format("max step reductions must be >= 0, got {}", max_step_reductions));
  }
  optimiser.Check();
  convergence.Check();
}

namespace {

// Unweighted term values [B] (CPU float64) of `terms`, in term order, plus the total last.
std::vector<at::Tensor> TermValues(const LossTerms& terms) {
  std::vector<at::Tensor> out;
  for (const auto& t : terms.terms()) out.push_back(t.per_image.detach().to(torch::kCPU, torch::kFloat64));
  out.push_back(terms.Total().detach().to(torch::kCPU, torch::kFloat64));
  return out;
}

std::map<std::string, double> TermMap(const LossTerms& terms, const std::vector<at::Tensor>& values,
                                      int64_t image) {
  std::map<std::string, double> out;
  for (size_t i = 0; i < terms.terms().size(); ++i) out[terms.terms()[i].name] = values[i][image].item<double>();
  out["total"] = values.back()[image].item<double>();
  return out;
}

}  // namespace

std::vector<FitSummary> MinimiseBatch(const std::vector<at::Tensor>& params, const ObjectiveFn& objective,
                                      const MinimiseOptions& options) {
  options.Check();
  const auto t0 = std::chrono::steady_clock::now();
  BatchOptimiser opt(params, options.optimiser);
  const int64_t batch = opt.batch_size();
  ConvergenceMonitor monitor(batch, options.convergence);
  std::vector<FitSummary> out(batch);
  std::vector<bool> done(batch, false);

  LossTerms terms = objective();
  if (terms.empty() || terms.batch_size() != batch) {
    throw Error(fmt::format("MinimiseBatch: the objective returned {} images, expected {}",
                            terms.batch_size(), batch));
  }
  const LossTerms layout = terms.Detached();  // term names/order for the summaries
  std::vector<at::Tensor> best_values = TermValues(terms);
  OptimiserState best = opt.Snapshot();
  auto update = monitor.Observe(best_values.back());
  for (int64_t b = 0; b < batch; ++b) {
    out[b].initial_terms = TermMap(layout, best_values, b);
    out[b].initial_loss = out[b].initial_terms["total"];
    if (update.nonfinite[b].item<bool>()) {
      out[b].termination = Termination::kNonFinite;
      out[b].message = "the initial loss is not finite";
      done[b] = true;
    } else if (options.max_iterations == 0) {
      out[b].termination = Termination::kNoIterations;
      out[b].message = "no iterations requested";
      done[b] = true;
    }
  }
  opt.Deactivate(update.nonfinite.to(opt.active().device()));
  std::vector<int> reductions(batch, 0), iterations(batch, 0);

  for (int it = 0; it < options.max_iterations; ++it) {
    if (!opt.active().any().item<bool>()) break;
    if (options.interrupted && options.interrupted()) {
      for (int64_t b = 0; b < batch; ++b) {
        if (!done[b]) {
          out[b].termination = Termination::kInterrupted;
          out[b].message = "interrupted";
          done[b] = true;
        }
      }
      break;
    }
    opt.ZeroGrad();
    // Sum, not mean: each image's gradient is that of its own loss.
    terms.Total().sum().backward();
    const auto was_active = opt.active().to(torch::kCPU);
    opt.Step();
    for (int64_t b = 0; b < batch; ++b) iterations[b] += was_active[b].item<bool>() ? 1 : 0;
    opt.ZeroGrad();
    terms = objective();
    const auto values = TermValues(terms);
    const auto active_cpu = opt.active().to(torch::kCPU);
    update = monitor.Observe(values.back(), active_cpu);
    if (update.improved.any().item<bool>()) {
      opt.UpdateSnapshot(best, update.improved.to(opt.active().device()));
      for (size_t i = 0; i < values.size(); ++i) {
        best_values[i] = torch::where(update.improved, values[i], best_values[i]);
      }
    }
    bool restored = false;
    auto stop = torch::zeros({batch}, torch::kBool);
    auto reduce = torch::zeros({batch}, torch::kBool);
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      if (update.diverged[b].item<bool>()) {
        if (reductions[b] < options.max_step_reductions) {
          ++reductions[b];
          reduce[b] = true;
        } else {
          out[b].termination = Termination::kDiverged;
          out[b].message = fmt::format("the loss {} after {} step reductions",
                                       update.nonfinite[b].item<bool>() ? "became non-finite" : "kept rising",
                                       reductions[b]);
          stop[b] = true;
          done[b] = true;
        }
      } else if (update.converged[b].item<bool>()) {
        out[b].termination = Termination::kConverged;
        out[b].message = fmt::format("relative change <= {:g} for {} iterations",
                                     options.convergence.relative_tolerance, options.convergence.patience);
        stop[b] = true;
        done[b] = true;
      }
    }
    if (reduce.any().item<bool>()) {
      const auto r = reduce.to(opt.active().device());
      opt.Restore(best, r);
      opt.ScaleStepSizes(r, options.step_reduction);
      monitor.ResetToBest(reduce);
      restored = true;
    }
    if (stop.any().item<bool>()) opt.Deactivate(stop.to(opt.active().device()));
    if (restored && it + 1 < options.max_iterations) terms = objective();
  }
  // Every image ends in its best state.
  opt.Restore(best);
  const auto steps = opt.steps().to(torch::kCPU);
  const auto sizes = opt.step_sizes().to(torch::kCPU);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int64_t b = 0; b < batch; ++b) {
    if (!done[b]) {
      out[b].termination = Termination::kMaxIterations;
      out[b].message = fmt::format("reached {} iterations", options.max_iterations);
    }
    out[b].final_terms = TermMap(layout, best_values, b);
    out[b].final_loss = out[b].final_terms["total"];
    out[b].best_iteration = static_cast<int>(steps[b].item<int64_t>());
    out[b].iterations = iterations[b];
    out[b].step_reductions = reductions[b];
    out[b].final_step_size = sizes[b].item<double>();
    out[b].seconds = seconds;
  }
  return out;
}

}  // namespace facebatch::fit
