// Per-image Adam/SGD, convergence masks, snapshots, the convergence monitor
// and MinimiseBatch on problems with known minima.
#include "fit/Optimiser.h"

#include "core/Error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace facebatch::fit {
namespace {

using torch::indexing::Slice;

const auto kF64 = torch::dtype(torch::kFloat64);

// Per-image quadratic sum_j a_b (x_bj - c_bj)^2 with gradient into x.
at::Tensor Quadratic(const at::Tensor& x, const at::Tensor& centre, const at::Tensor& scale) {
  return (scale.unsqueeze(1) * (x - centre).pow(2)).sum(1);
}

void Backward(const at::Tensor& x, const at::Tensor& centre, const at::Tensor& scale) {
  Quadratic(x, centre, scale).sum().backward();
}

TEST(BatchOptimiser, FirstAdamStepsByHandWithPerImageStepSizes) {
  auto x = torch::tensor({1.0, -2.0, 0.5, 3.0}, kF64).view({2, 2}).requires_grad_(true);
  BatchOptimiser opt({x}, {});
  opt.SetStepSizes(torch::tensor({0.1, 0.01}, kF64));
  // loss = sum x^2 -> g = 2x; Adam's first step is -lr * g / |g| = -lr sign(x) (eps aside)
  (x * x).sum().backward();
  opt.Step();
  const double eps_rel = 1e-8;  // Adam epsilon against |g| >= 1
  EXPECT_NEAR(x[0][0].item<double>(), 1.0 - 0.1, eps_rel);
  EXPECT_NEAR(x[0][1].item<double>(), -2.0 + 0.1, eps_rel);
  EXPECT_NEAR(x[1][0].item<double>(), 0.5 - 0.01, eps_rel);
  EXPECT_NEAR(x[1][1].item<double>(), 3.0 - 0.01, eps_rel);
  // second step on x[0][0] by hand: g1 = 2, g2 = 1.8
  opt.ZeroGrad();
  (x * x).sum().backward();
  opt.Step();
  const double g1 = 2.0, g2 = 1.8, b1 = 0.9, b2 = 0.999;
  const double m = b1 * (1 - b1) * g1 + (1 - b1) * g2, v = b2 * (1 - b2) * g1 * g1 + (1 - b2) * g2 * g2;
  const double mhat = m / (1 - b1 * b1), vhat = v / (1 - b2 * b2);
  EXPECT_NEAR(x[0][0].item<double>(), 0.9 - 0.1 * mhat / (std::sqrt(vhat) + 1e-8), 1e-9);
  EXPECT_EQ(opt.steps()[0].item<int64_t>(), 2);
}

TEST(BatchOptimiser, SgdAndMomentumByHand) {
  auto x = torch::tensor({1.0, 2.0}, kF64).view({2, 1}).requires_grad_(true);
  OptimiserOptions o;
  o.method = OptimiserMethod::kSGD;
  o.step_size = 0.1;
  o.momentum = 0.5;
  BatchOptimiser opt({x}, o);
  (x * x).sum().backward();  // g = 2x = (2, 4)
  opt.Step();                // buf = g; x -= 0.1 g
  EXPECT_NEAR(x[0][0].item<double>(), 0.8, 1e-12);
  EXPECT_NEAR(x[1][0].item<double>(), 1.6, 1e-12);
  opt.ZeroGrad();
  (x * x).sum().backward();  // g = (1.6, 3.2); buf = 0.5 (2, 4) + g = (2.6, 5.2)
  opt.Step();
  EXPECT_NEAR(x[0][0].item<double>(), 0.8 - 0.26, 1e-12);
  EXPECT_NEAR(x[1][0].item<double>(), 1.6 - 0.52, 1e-12);
}

TEST(BatchOptimiser, PerImageAdamConvergesToKnownMinimaAndImagesAreIndependent) {
  torch::manual_seed(5);
  const int64_t batch = 4;
  auto centre = torch::randn({batch, 6}, kF64);
  auto scale = torch::tensor({1.0, 10.0, 0.1, 100.0}, kF64);  // very different curvatures
  auto x = torch::zeros({batch, 6}, kF64).requires_grad_(true);
  auto y = torch::zeros({1, 6}, kF64).requires_grad_(true);  // image 0 alone
  OptimiserOptions o;
  o.step_size = 0.05;
  BatchOptimiser opt({x}, o), single({y}, o);
  for (int it = 0; it < 1500; ++it) {
    opt.ZeroGrad();
    single.ZeroGrad();
    Backward(x, centre, scale);
    Backward(y, centre.index({Slice(0, 1)}), scale.index({Slice(0, 1)}));
    opt.Step();
    single.Step();
    if (it == 1000) opt.ScaleStepSizes(torch::ones({batch}, torch::kBool), 0.1);
    if (it == 1000) single.ScaleStepSizes(torch::ones({1}, torch::kBool), 0.1);
  }
  EXPECT_LT((x - centre).abs().max().item<double>(), 1e-3);
  // image 0 in the batch follows exactly the trajectory it has alone
  EXPECT_TRUE(torch::equal(x.index({Slice(0, 1)}), y));
}

TEST(BatchOptimiser, DeactivatedImagesAreFrozenBitwise) {
  torch::manual_seed(6);
  auto centre = torch::randn({3, 4}, kF64);
  auto scale = torch::ones({3}, kF64);
  auto x = torch::zeros({3, 4}, kF64).requires_grad_(true);
  auto z = torch::zeros({3, 2, 2}, torch::kFloat32).requires_grad_(true);  // a second parameter tensor
  BatchOptimiser opt({x, z}, {});
  auto step = [&] {
    opt.ZeroGrad();
    (Quadratic(x, centre, scale) + (z - 1).pow(2).sum({1, 2}).to(torch::kFloat64)).sum().backward();
    return opt.Step();
  };
  for (int i = 0; i < 5; ++i) step();
  opt.Deactivate(torch::tensor({false, true, false}));
  const auto frozen = opt.Snapshot();
  for (int i = 0; i < 10; ++i) step();
  const auto now = opt.Snapshot();
  for (size_t p = 0; p < 2; ++p) {
    EXPECT_TRUE(torch::equal(now.params[p][1], frozen.params[p][1]));
    EXPECT_TRUE(torch::equal(now.first_moment[p][1], frozen.first_moment[p][1]));
    EXPECT_TRUE(torch::equal(now.second_moment[p][1], frozen.second_moment[p][1]));
    EXPECT_FALSE(torch::equal(now.params[p][0], frozen.params[p][0]));
  }
  EXPECT_EQ(now.steps[1].item<int64_t>(), 5);
  EXPECT_EQ(now.steps[0].item<int64_t>(), 15);
}

TEST(BatchOptimiser, NonFiniteGradientSkipsOnlyThatImage) {
  auto x = torch::ones({2, 3}, kF64).requires_grad_(true);
  BatchOptimiser opt({x}, {});
  auto before = x.detach().clone();
  x.mutable_grad() = torch::tensor({1.0, std::nan(""), 1.0, 1.0, 1.0, 1.0}, kF64).view({2, 3});
  auto updated = opt.Step();
  EXPECT_FALSE(updated[0].item<bool>());
  EXPECT_TRUE(updated[1].item<bool>());
  EXPECT_TRUE(torch::equal(x[0], before[0]));
  EXPECT_FALSE(torch::equal(x[1], before[1]));
  EXPECT_TRUE(torch::isfinite(opt.Snapshot().first_moment[0]).all().item<bool>());
}

TEST(BatchOptimiser, SnapshotRestoreIsExact) {
  torch::manual_seed(7);
  auto centre = torch::randn({2, 5}, kF64);
  auto scale = torch::tensor({1.0, 3.0}, kF64);
  auto x = torch::randn({2, 5}, kF64).requires_grad_(true);
  BatchOptimiser opt({x}, {});
  auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      opt.ZeroGrad();
      Backward(x, centre, scale);
      opt.Step();
    }
  };
  run(5);
  const auto snap = opt.Snapshot();
  run(7);
  const auto after_first = x.detach().clone();
  opt.Restore(snap);
  EXPECT_TRUE(torch::equal(x, snap.params[0]));
  run(7);  // moments and step counts came back too: the same trajectory, bitwise
  EXPECT_TRUE(torch::equal(x, after_first));

  // partial restore and UpdateSnapshot
  auto best = opt.Snapshot();
  run(3);
  const auto moved = x.detach().clone();
  opt.Restore(best, torch::tensor({true, false}));
  EXPECT_TRUE(torch::equal(x[0], best.params[0][0]));
  EXPECT_TRUE(torch::equal(x[1], moved[1]));
  opt.UpdateSnapshot(best, torch::tensor({false, true}));
  EXPECT_TRUE(torch::equal(best.params[0][1], moved[1]));
  EXPECT_THROW(opt.Restore(best, torch::tensor({true})), Error);
}

TEST(BatchOptimiser, RejectsBadParameters) {
  EXPECT_THROW(BatchOptimiser({torch::zeros({2, 3})}, {}), Error);  // no requires_grad
  EXPECT_THROW(BatchOptimiser({torch::zeros({2, 3}).requires_grad_(true), torch::zeros({3, 1}).requires_grad_(true)}, {}),
               Error);
  EXPECT_THROW(BatchOptimiser({torch::zeros({2}, torch::kInt64)}, {}), Error);
  OptimiserOptions o;
  o.step_size = -1;
  EXPECT_THROW(BatchOptimiser({torch::zeros({2, 3}).requires_grad_(true)}, o), UsageError);
}

TEST(ConvergenceMonitor, ConvergesDivergesAndCatchesNonFinite) {
  ConvergenceOptions o;
  o.relative_tolerance = 1e-3;
  o.patience = 2;
  o.rise_tolerance = 0.5;
  o.rise_patience = 2;
  ConvergenceMonitor mon(3, o);
  const double nan = std::nan("");
  // image 0: 10, 5, 5, 5 (converges at the 4th); image 1: 1, 2, 3 (rising); image 2: 1, NaN
  auto u = mon.Observe(torch::tensor({10.0, 1.0, 1.0}));
  EXPECT_TRUE(u.improved.all().item<bool>());
  u = mon.Observe(torch::tensor({5.0, 2.0, nan}));
  EXPECT_TRUE(u.improved[0].item<bool>());
  EXPECT_FALSE(u.improved[1].item<bool>());
  EXPECT_TRUE(u.nonfinite[2].item<bool>());
  EXPECT_TRUE(u.diverged[2].item<bool>());
  EXPECT_FALSE(u.diverged[1].item<bool>());  // 2 > 1.5 once
  u = mon.Observe(torch::tensor({5.0, 3.0, 1.0}), torch::tensor({true, true, false}));
  EXPECT_FALSE(u.converged[0].item<bool>());  // one calm iteration
  EXPECT_TRUE(u.diverged[1].item<bool>());    // twice above 1.5
  EXPECT_FALSE(u.diverged[2].item<bool>());   // inactive: ignored
  u = mon.Observe(torch::tensor({5.0, 1.0, 1.0}));
  EXPECT_TRUE(u.converged[0].item<bool>());
  EXPECT_EQ(mon.best_loss()[0].item<double>(), 5.0);
  EXPECT_EQ(mon.best_iteration()[0].item<int64_t>(), 1);
}

// A batch of 1-d problems: image 0 a quadratic with minimum 1 at 3; image 1 a
// non-finite start; image 2 (x - 2)^2 that is NaN beyond x = 1 (diverges on
// the way to the unreachable minimum); image 3 a slowly convergent quadratic.
TEST(MinimiseBatch, TerminationKindsAndBestStates) {
  auto x = torch::tensor({0.0, 0.0, 0.0, 0.0}, kF64).view({4, 1}).requires_grad_(true);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ObjectiveFn objective = [&] {
    auto v = x.squeeze(1);
    auto l0 = (v[0] - 3).pow(2) + 1;  // minimum 1 at 3
    auto l1 = v[1] * nan;
    auto l2 = torch::where(v[2] > 1, torch::full({}, nan, kF64), (v[2] - 2).pow(2));
    auto l3 = 1e-3 * (v[3] - 50).pow(2);
    LossTerms t;
    t.Add("quadratic", 1.0, torch::stack({l0, l1, l2, l3}));
    t.Add("zero", 2.0, torch::zeros({4}, kF64));
    return t;
  };
  MinimiseOptions o;
  o.max_iterations = 300;
  o.optimiser.step_size = 0.3;
  o.convergence.relative_tolerance = 1e-6;
  o.convergence.patience = 3;
  auto s = MinimiseBatch({x}, objective, o);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].termination, Termination::kConverged) << s[0].FullReport();
  EXPECT_NEAR(x[0][0].item<double>(), 3.0, 1e-2);
  EXPECT_NEAR(s[0].initial_loss, 10.0, 1e-12);
  EXPECT_NEAR(s[0].initial_terms.at("quadratic"), 10.0, 1e-12);
  EXPECT_LT(s[0].final_loss, 1.0 + 1e-4);
  EXPECT_LT(s[0].iterations, 300);

  EXPECT_EQ(s[1].termination, Termination::kNonFinite);
  EXPECT_EQ(s[1].iterations, 0);
  EXPECT_EQ(x[1][0].item<double>(), 0.0);
  EXPECT_FALSE(s[1].IsUsable());

  EXPECT_EQ(s[2].termination, Termination::kDiverged) << s[2].FullReport();
  EXPECT_EQ(s[2].step_reductions, o.max_step_reductions);
  EXPECT_NEAR(s[2].final_step_size, 0.3 * std::pow(0.5, o.max_step_reductions), 1e-12);
  EXPECT_LE(x[2][0].item<double>(), 1.0);  // ended in its best, finite state
  EXPECT_TRUE(std::isfinite(s[2].final_loss));
  EXPECT_NEAR(s[2].final_loss, std::pow(x[2][0].item<double>() - 2, 2), 1e-12);
  EXPECT_FALSE(s[2].IsUsable());

  EXPECT_EQ(s[3].termination, Termination::kMaxIterations) << s[3].FullReport();
  EXPECT_EQ(s[3].iterations, 300);
  EXPECT_LT(s[3].final_loss, s[3].initial_loss);
  EXPECT_TRUE(s[3].IsUsable());
  EXPECT_NE(s[3].BriefReport().find("max_iterations after 300 iterations"), std::string::npos)
      << s[3].BriefReport();
}

TEST(MinimiseBatch, NoIterationsAndInterrupt) {
  auto x = torch::ones({2, 1}, kF64).requires_grad_(true);
  ObjectiveFn objective = [&] {
    LossTerms t;
    t.Add("sq", 1.0, x.squeeze(1).pow(2));
    return t;
  };
  MinimiseOptions o;
  o.max_iterations = 0;
  auto s = MinimiseBatch({x}, objective, o);
  EXPECT_EQ(s[0].termination, Termination::kNoIterations);
  EXPECT_EQ(s[0].final_loss, 1.0);
  EXPECT_TRUE(torch::equal(x, torch::ones({2, 1}, kF64)));

  o.max_iterations = 100;
  int polls = 0;
  o.interrupted = [&] { return ++polls > 4; };
  s = MinimiseBatch({x}, objective, o);
  EXPECT_EQ(s[1].termination, Termination::kInterrupted);
  EXPECT_EQ(s[1].iterations, 4);
  EXPECT_LT(s[1].final_loss, 1.0);
}

}  // namespace
}  // namespace facebatch::fit
