// The assembled objective: which terms it evaluates for train/fit settings,
// consistency with the individual terms, and a small fit that lowers it.
#include "fit/Objective.h"
#include "fit/Optimiser.h"

#include "core/Error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace facebatch::fit {
namespace {

const auto kF64 = torch::dtype(torch::kFloat64);
constexpr int64_t kB = 2, kU = 6, kV = 8;

// A differentiable stand-in renderer on the UV grid itself (H = U, W = V):
// colour = albedo * (0.5 + 0.5 z), coverage = the face mask.
struct Scene {
  at::Tensor mask = torch::ones({kU, kV}, torch::kBool);
  RenderFn render;
  Scene() {
    mask.index_put_({0, 0}, false);
    mask.index_put_({kU - 1, kV - 1}, false);
    auto m = mask;
    render = [m](const at::Tensor& shape, const at::Tensor& albedo) {
      auto z = shape.narrow(1, 2, 1);
      return Rendering{albedo * (0.5 + 0.5 * z), m.view({1, 1, kU, kV}).expand({shape.size(0), 1, kU, kV})};
    };
  }
};

ObjectiveInputs FullInputs(const Scene& scene) {
  torch::manual_seed(11);
  ObjectiveInputs in;
  in.render = scene.render;
  in.mask = scene.mask;
  in.shape = torch::rand({kB, 3, kU, kV}, kF64);
  in.albedo = torch::rand({kB, 3, kU, kV}, kF64);
  in.shape_proxy = in.shape + 0.1 * torch::randn({kB, 3, kU, kV}, kF64);
  in.albedo_proxy = in.albedo + 0.1 * torch::randn({kB, 3, kU, kV}, kF64);
  in.input = torch::rand({kB, 3, kU, kV}, kF64);
  in.landmarks = torch::rand({kB, 5, 2}, kF64) * 224;
  in.landmarks_target = torch::rand({kB, 5, 2}, kF64) * 224;
  in.input_uv = torch::rand({kB, 3, kU, kV}, kF64);
  in.visibility = (torch::rand({kB, 1, kU, kV}) > 0.5).to(torch::kFloat64);
  in.latent_shape = torch::randn({kB, 4}, kF64);
  in.latent_albedo = torch::randn({kB, 4}, kF64);
  return in;
}

std::set<std::string> Names(const LossTerms& t) {
  std::set<std::string> s;
  for (const auto& term : t.terms()) s.insert(term.name);
  return s;
}

TEST(EvaluateObjective, PaperTrainingObjective) {
  Scene scene;
  auto in = FullInputs(scene);
  LossWeights w;
  w.latent_shape_prior = 0.5;
  std::vector<std::pair<Pairing, Rendering>> renders;
  auto t = EvaluateObjective(in, w, nullptr, &renders);
  EXPECT_EQ(Names(t), (std::set<std::string>{"photometric:proxy-proxy", "photometric:proxy-true",
                                             "photometric:true-proxy", "landmark", "albedo_symmetry",
                                             "albedo_constancy", "shape_smoothness", "residual_shape",
                                             "residual_albedo", "residual_symmetry", "latent_shape_prior"}));
  ASSERT_EQ(renders.size(), 3u);
  // regularisers act on the proxies (eq. 13)
  EXPECT_TRUE(torch::equal(t.Find("albedo_symmetry")->per_image,
                           AlbedoSymmetryLoss(in.albedo_proxy, in.mask).per_image));
  EXPECT_FALSE(torch::allclose(t.Find("albedo_symmetry")->per_image,
                               AlbedoSymmetryLoss(in.albedo, in.mask).per_image));
  EXPECT_TRUE(torch::equal(t.Find("shape_smoothness")->per_image,
                           ShapeSmoothnessLoss(in.shape_proxy, in.mask).per_image));
  // I(S~, A) compared with the input
  auto r = scene.render(in.shape_proxy, in.albedo);
  EXPECT_TRUE(torch::allclose(t.Find("photometric:proxy-true")->per_image,
                              PhotometricLoss(r.image, in.input, r.coverage).per_image));
  // weighted total
  auto expect = torch::zeros({kB}, kF64);
  for (const auto& term : t.terms()) expect = expect + term.weight * term.per_image;
  EXPECT_TRUE(torch::allclose(t.Total(), expect));
  EXPECT_EQ(t.Find("landmark")->weight, w.landmark);
}

TEST(EvaluateObjective, FitSettingsAndMissingInputs) {
  Scene scene;
  auto in = FullInputs(scene);
  in.shape_proxy = at::Tensor();
  in.albedo_proxy = at::Tensor();
  in.input_uv = at::Tensor();
  in.landmarks = at::Tensor();
  LossWeights w;
  EXPECT_THROW(EvaluateObjective(in, w), UsageError);  // paper pairings need proxies
  w.pairings = "fit";
  auto t = EvaluateObjective(in, w);
  // no proxies: eq. 12 regularises S and A; no residuals, no constancy without input_uv
  EXPECT_EQ(Names(t), (std::set<std::string>{"photometric:true-true", "albedo_symmetry", "shape_smoothness"}));
  EXPECT_TRUE(torch::equal(t.Find("albedo_symmetry")->per_image, AlbedoSymmetryLoss(in.albedo, in.mask).per_image));
  w.perceptual = 1.0;
  w.perceptual_model = "x.pt";
  EXPECT_THROW(EvaluateObjective(in, w), UsageError);  // no network loaded
}

TEST(VisibilityFromNormals, HardAndSoft) {
  auto n = torch::zeros({1, 3, 1, 3}, kF64);
  n.index_put_({0, 2}, torch::tensor({1.0, 0.05, -0.5}, kF64).view({1, 3}));
  auto hard = VisibilityFromNormals(n);
  auto soft = VisibilityFromNormals(n, 0.1);
  EXPECT_EQ(hard.sizes(), (c10::IntArrayRef{1, 1, 1, 3}));
  EXPECT_DOUBLE_EQ(hard[0][0][0][1].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(hard[0][0][0][2].item<double>(), 0.0);
  EXPECT_NEAR(soft[0][0][0][1].item<double>(), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(soft[0][0][0][0].item<double>(), 1.0);
}

// Fitting the maps of a scene rendered from known maps lowers each term.
TEST(EvaluateObjective, SmallFitLowersTheObjective) {
  Scene scene;
  torch::manual_seed(12);
  auto true_shape = torch::rand({kB, 3, kU, kV}, kF64);
  auto true_albedo = torch::rand({kB, 3, kU, kV}, kF64) * 0.8 + 0.1;
  auto target = scene.render(true_shape, true_albedo).image.detach();
  auto shape = (true_shape + 0.3 * torch::randn_like(true_shape)).requires_grad_(true);
  auto albedo = torch::full_like(true_albedo, 0.5).requires_grad_(true);
  LossWeights w;
  w.pairings = "fit";
  w.shape_smoothness = 0.01;
  w.albedo_symmetry = 0.0;
  ObjectiveFn objective = [&] {
    ObjectiveInputs in;
    in.render = scene.render;
    in.mask = scene.mask;
    in.input = target;
    in.shape = shape;
    in.albedo = albedo;
    return EvaluateObjective(in, w);
  };
  MinimiseOptions o;
  o.max_iterations = 200;
  o.optimiser.step_size = 0.02;
  auto s = MinimiseBatch({shape, albedo}, objective, o);
  for (const auto& summary : s) {
    EXPECT_TRUE(summary.IsUsable()) << summary.FullReport();
    EXPECT_LT(summary.final_terms.at("photometric:true-true"), 0.2 * summary.initial_terms.at("photometric:true-true"))
        << summary.FullReport();
    EXPECT_LT(summary.final_loss, summary.initial_loss);
  }
}

}  // namespace
}  // namespace facebatch::fit
