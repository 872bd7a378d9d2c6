// Eqs. 5-6 with tiny TorchScript feature networks built in the test.
#include "fit/Losses.h"

#include "TestSupport.h"
#include "core/Error.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

namespace facebatch::fit {
namespace {

constexpr double kTol = 1e-6;

// phi(x) = (w * x, sum_c x) with a parameter w = 2: two "layers" "0" and "1".
torch::jit::Module TupleNetwork() {
  torch::jit::Module m("TinyFeatures");
  m.register_parameter("w", torch::full({}, 2.0, torch::kFloat64), false);
  m.define(R"(
def forward(self, x):
    return (x * self.w, x.sum(1, keepdim=True))
)");
  return m;
}

torch::jit::Module DictNetwork() {
  torch::jit::Module m("TinyDictFeatures");
  m.register_parameter("w", torch::full({}, 3.0, torch::kFloat64), false);
  m.define(R"(
def forward(self, x):
    return {"scaled": x * self.w, "relu": torch.relu(x - 0.15)}
)");
  return m;
}

// rendered (0.1, 0.2, 0.3) and input (0.2, 0.2, 0.0) on one pixel: diff (-0.1, 0, 0.3).
at::Tensor Rendered() { return torch::tensor({0.1, 0.2, 0.3}, torch::kFloat64).view({1, 3, 1, 1}); }
at::Tensor Input() { return torch::tensor({0.2, 0.2, 0.0}, torch::kFloat64).view({1, 3, 1, 1}); }

TEST(PerceptualLoss, HandComputedL2OnSavedAndLoadedNetwork) {
  testing::TempDir dir;
  const auto path = (dir / "features.pt").string();
  TupleNetwork().save(path);

  PerceptualLoss::Options o;
  o.model_path = path;
  o.layers = {"0"};
  // layer "0": ||2 d||^2 / 3 = 4 (0.01 + 0 + 0.09) / 3
  EXPECT_NEAR(PerceptualLoss(o)(Rendered(), Input()).per_image[0].item<double>(), 4 * 0.1 / 3, kTol);
  o.layers = {"1"};
  // layer "1": (sum d)^2 / 1 = 0.2^2
  EXPECT_NEAR(PerceptualLoss(o)(Rendered(), Input()).per_image[0].item<double>(), 0.04, kTol);
  o.layers = {};  // all layers: mean over C
  EXPECT_NEAR(PerceptualLoss(o)(Rendered(), Input()).per_image[0].item<double>(), (4 * 0.1 / 3 + 0.04) / 2,
              kTol);
  // identical images: 0
  EXPECT_NEAR(PerceptualLoss(o)(Input(), Input()).per_image[0].item<double>(), 0.0, 1e-15);
}

TEST(PerceptualLoss, CosineDistanceDictOutputsAndNormalisation) {
  PerceptualLoss::Options o;
  o.layers = {"scaled"};
  o.distance = FeatureDistance::kCosine;
  PerceptualLoss loss(o, DictNetwork());
  // 1 - cos(a, b): a.b = 0.06, |a| = sqrt(0.14), |b| = sqrt(0.08)
  EXPECT_NEAR(loss(Rendered(), Input()).per_image[0].item<double>(),
              1.0 - 0.06 / (std::sqrt(0.14) * std::sqrt(0.08)), kTol);
  // relu(x - 0.15): rendered (0, 0.05, 0.15), input (0.05, 0.05, 0); l2: (0.0025 + 0 + 0.0225) / 3
  o.layers = {"relu"};
  o.distance = FeatureDistance::kL2;
  EXPECT_NEAR(PerceptualLoss(o, DictNetwork())(Rendered(), Input()).per_image[0].item<double>(), 0.025 / 3,
              kTol);
  // normalisation (x - mean) / std with std 0.5 doubles the differences: x4 in l2
  o.layers = {"scaled"};
  o.mean = {0.1, 0.2, 0.3};
  o.std = {0.5, 0.5, 0.5};
  EXPECT_NEAR(PerceptualLoss(o, DictNetwork())(Rendered(), Input()).per_image[0].item<double>(),
              9 * 4 * 0.1 / 3, kTol);
}

TEST(PerceptualLoss, GradientReachesRenderedOnlyAndFloat32Works) {
  PerceptualLoss loss({}, TupleNetwork());
  auto rendered = Rendered().to(torch::kFloat32).requires_grad_(true);
  auto input = Input().to(torch::kFloat32).requires_grad_(true);
  auto r = loss(rendered, input);
  EXPECT_EQ(r.per_image.scalar_type(), torch::kFloat32);
  r.mean.backward();
  ASSERT_TRUE(rendered.grad().defined());
  EXPECT_GT(rendered.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(input.grad().defined());
}

TEST(PerceptualLoss, NamedErrors) {
  PerceptualLoss::Options o;
  o.model_path = "/nonexistent/features.pt";
  try {
    PerceptualLoss loss(o);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), o.model_path);
  }
  o.layers = {"7"};
  PerceptualLoss loss(o, TupleNetwork());
  try {
    loss(Rendered(), Input());
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no output '7' (it has: 0, 1)"), std::string::npos) << e.what();
  }
  o.method = "features";
  EXPECT_THROW(PerceptualLoss(o, TupleNetwork()), Error);
}

TEST(PerceptualLoss, AddsToPairingsAsEq6) {
  auto opts = torch::dtype(torch::kFloat64);
  auto s = torch::ones({1, 3, 1, 1}, opts);
  auto a = Rendered();
  RenderFn render = [](const at::Tensor& shape, const at::Tensor& albedo) {
    return Rendering{shape * albedo, torch::ones({1, 1, 1, 1}, torch::kBool)};
  };
  PerceptualLoss::Options o;
  o.layers = {"1"};
  PerceptualLoss loss(o, TupleNetwork());
  auto r = ReconstructionPairings(s, s, a, a, Input(), render, kFitPairings, &loss, 10.0);
  // photometric ||(-0.1, 0, 0.3)|| + 10 * 0.04
  EXPECT_NEAR(r.total.per_image[0].item<double>(), std::sqrt(0.1) + 0.4, kTol);
}

}  // namespace
}  // namespace facebatch::fit
