// Every loss term of the paper (eqs. 4-16) against values computed by hand on
// tiny tensors, plus zero cases, argument checks and autograd vs. finite
// differences.
#include "fit/Losses.h"

#include "core/Error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <vector>

namespace facebatch::fit {
namespace {

using torch::indexing::Slice;

// A [1, C, U, V] float64 map from per-channel row-major values.
at::Tensor Map(std::vector<std::vector<double>> channels, int64_t rows, int64_t cols) {
  std::vector<at::Tensor> ch;
  for (auto& c : channels) ch.push_back(torch::tensor(c, torch::kFloat64).view({rows, cols}));
  return torch::stack(ch).unsqueeze(0);
}

at::Tensor BoolMask(std::vector<int> values, int64_t rows, int64_t cols) {
  std::vector<int64_t> v(values.begin(), values.end());
  return torch::tensor(v).view({rows, cols}).to(torch::kBool);
}

double At(const LossResult& r, int64_t b) { return r.per_image[b].item<double>(); }

constexpr double kTol = 1e-6;

// ---------------------------------------------------------------------------
// eq. 4

TEST(PhotometricLoss, HandComputedL21) {
  // 3 images of 1 x 2 pixels.
  auto rendered = torch::zeros({3, 3, 1, 2}, torch::kFloat64);
  auto input = torch::zeros({3, 3, 1, 2}, torch::kFloat64);
  // image 0: pixel 0 diff (0, -0.3, 0.4) -> 0.5; pixel 1 diff (0.6, 0, 0.8) -> 1.0
  rendered.index_put_({0, Slice(), 0, 0}, torch::tensor({0.5, 0.5, 0.5}, torch::kFloat64));
  input.index_put_({0, Slice(), 0, 0}, torch::tensor({0.5, 0.8, 0.1}, torch::kFloat64));
  rendered.index_put_({0, Slice(), 0, 1}, torch::tensor({0.7, 0.2, 0.9}, torch::kFloat64));
  input.index_put_({0, Slice(), 0, 1}, torch::tensor({0.1, 0.2, 0.1}, torch::kFloat64));
  // image 1: pixel 0 (uncovered) diff 1, pixel 1 diff (0.3, 0.4, 0) -> 0.5
  rendered.index_put_({1, Slice(), 0, 0}, torch::tensor({1.0, 0.0, 0.0}, torch::kFloat64));
  rendered.index_put_({1, Slice(), 0, 1}, torch::tensor({0.3, 0.4, 0.0}, torch::kFloat64));
  // image 2: nothing covered
  rendered.index_put_({2}, 0.7);
  auto coverage = torch::tensor({1, 1, 0, 1, 0, 0}).view({3, 1, 1, 2}).to(torch::kBool);

  auto r = PhotometricLoss(rendered, input, coverage);
  ASSERT_EQ(r.per_image.sizes(), (c10::IntArrayRef{3}));
  EXPECT_NEAR(At(r, 0), (0.5 + 1.0) / 2, kTol);
  EXPECT_NEAR(At(r, 1), 0.5, kTol);
  EXPECT_NEAR(At(r, 2), 0.0, kTol);
  EXPECT_NEAR(r.mean.item<double>(), (0.75 + 0.5 + 0.0) / 3, kTol);

  // Float coverage acts as weights: (1 * 0.5 + 0.5 * 1.0) / 1.5.
  auto soft = torch::tensor({1.0, 0.5, 0.0, 1.0, 0.0, 0.0}, torch::kFloat64).view({3, 1, 1, 2});
  EXPECT_NEAR(At(PhotometricLoss(rendered, input, soft), 0), 1.0 / 1.5, kTol);

  // Float32 works too, and identical images give exactly 0.
  auto f = rendered.to(torch::kFloat32);
  EXPECT_EQ(At(PhotometricLoss(f, f, coverage), 0), 0.0);
}

TEST(PhotometricLoss, NamedArgumentErrors) {
  auto img = torch::zeros({2, 3, 4, 4});
  auto cov = torch::ones({2, 1, 4, 4}, torch::kBool);
  try {
    PhotometricLoss(torch::zeros({2, 4, 4, 4}), img, cov);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("PhotometricLoss: rendered must be"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 4, 4, 4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(PhotometricLoss(img, torch::zeros({2, 3, 4, 5}), cov), Error);
  EXPECT_THROW(PhotometricLoss(img.to(torch::kInt32), img, cov), Error);
  EXPECT_THROW(PhotometricLoss(img, img, torch::ones({2, 1, 4, 4}, torch::kInt64)), Error);
  EXPECT_THROW(PhotometricLoss(img, img, at::Tensor()), Error);
}

// ---------------------------------------------------------------------------
// eq. 7

TEST(LandmarkLoss, ProjectionAndHandComputedError) {
  // M = [[2, 0, 0.5, 1], [0, -2, 0, 3]]: (1, 2, 4) -> (2 + 2 + 1, -4 + 3) = (5, -1)
  auto m = torch::tensor({2.0, 0.0, 0.5, 1.0, 0.0, -2.0, 0.0, 3.0}, torch::kFloat64).view({1, 2, 4});
  auto pts = torch::tensor({1.0, 2.0, 4.0, 0.0, 0.0, 0.0}, torch::kFloat64).view({1, 2, 3});
  auto proj = ProjectPoints(m, pts);
  ASSERT_EQ(proj.sizes(), (c10::IntArrayRef{1, 2, 2}));
  EXPECT_NEAR(proj[0][0][0].item<double>(), 5.0, kTol);
  EXPECT_NEAR(proj[0][0][1].item<double>(), -1.0, kTol);
  EXPECT_NEAR(proj[0][1][0].item<double>(), 1.0, kTol);
  EXPECT_NEAR(proj[0][1][1].item<double>(), 3.0, kTol);

  // Points (10, 20), (30, 40) vs. (13, 24), (30, 40): squared errors 25 and 0.
  auto p = torch::tensor({10.0, 20.0, 30.0, 40.0}, torch::kFloat64).view({1, 2, 2});
  auto u = torch::tensor({13.0, 24.0, 30.0, 40.0}, torch::kFloat64).view({1, 2, 2});
  EXPECT_NEAR(At(LandmarkLoss(p, u, {}, 5.0), 0), (25.0 + 0.0) / 2 / 25.0, kTol);
  auto w = torch::tensor({1.0, 3.0}, torch::kFloat64).view({1, 2});
  EXPECT_NEAR(At(LandmarkLoss(p, u, w, 5.0), 0), 25.0 / 4 / 25.0, kTol);
  auto vis = torch::tensor({0, 1}).view({1, 2}).to(torch::kBool);  // the wrong point is invisible
  EXPECT_NEAR(At(LandmarkLoss(p, u, vis, 5.0), 0), 0.0, kTol);
  EXPECT_NEAR(At(LandmarkLoss(p, u, torch::zeros({1, 2}, torch::kFloat64), 5.0), 0), 0.0, kTol);
  // default scale 224
  EXPECT_NEAR(At(LandmarkLoss(p, u), 0), 12.5 / (224.0 * 224.0), 1e-12);
  EXPECT_THROW(LandmarkLoss(p, u.view({1, 4, 1})), Error);
}

// ---------------------------------------------------------------------------
// eq. 8

TEST(AlbedoSymmetryLoss, HandComputedAndZeroForSymmetric) {
  auto a = Map({{1, 2, 3, 4}}, 1, 4);  // flip: 4 3 2 1 -> |diff| 3 1 1 3
  EXPECT_NEAR(At(AlbedoSymmetryLoss(a, BoolMask({1, 1, 1, 1}, 1, 4)), 0), 8.0 / 4, kTol);
  // mask F T T T: mirrored pixels in the mask are columns 1, 2 -> (1 + 1) / 2
  EXPECT_NEAR(At(AlbedoSymmetryLoss(a, BoolMask({0, 1, 1, 1}, 1, 4)), 0), 1.0, kTol);
  // three channels sum per pixel
  auto rgb = Map({{1, 2, 3, 4}, {0, 0, 0, 2}, {5, 5, 5, 5}}, 1, 4);
  EXPECT_NEAR(At(AlbedoSymmetryLoss(rgb, BoolMask({1, 1, 1, 1}, 1, 4)), 0), (8.0 + 4.0) / 4, kTol);

  torch::manual_seed(1);
  auto half = torch::rand({2, 3, 5, 3}, torch::kFloat64);
  auto sym = torch::cat({half, half.flip({-1})}, -1);  // [2, 3, 5, 6], symmetric
  auto mask = torch::ones({5, 6}, torch::kBool);
  auto r = AlbedoSymmetryLoss(sym, mask);
  EXPECT_EQ(r.per_image[0].item<double>(), 0.0);
  EXPECT_EQ(r.per_image[1].item<double>(), 0.0);
  EXPECT_GT(At(AlbedoSymmetryLoss(torch::rand({2, 3, 5, 6}, torch::kFloat64), mask), 0), 0.01);
  EXPECT_THROW(AlbedoSymmetryLoss(sym, torch::ones({5, 7}, torch::kBool)), Error);
  EXPECT_THROW(AlbedoSymmetryLoss(sym, torch::ones({5, 6})), Error);
}

// ---------------------------------------------------------------------------
// eq. 9

TEST(AlbedoConstancyLoss, HandComputed) {
  // 1 x 3 UV map; pairs (0,1) and (1,2).
  // input chromaticities: (1,0,0), (1,0,0), (0,1,0) -> w01 = 1, w12 = exp(-alpha sqrt 2)
  auto input = Map({{1, 2, 0}, {0, 0, 1}, {0, 0, 0}}, 1, 3);
  // albedo: (0,0,0), (3,4,0), (3,4,12) -> ||d01|| = 5, ||d12|| = 12
  auto albedo = Map({{0, 3, 3}, {0, 4, 4}, {0, 0, 12}}, 1, 3);
  auto mask = BoolMask({1, 1, 1}, 1, 3);
  const double w12 = std::exp(-std::sqrt(2.0));  // alpha = 1
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, {}, mask, 1.0, 1.0), 0), (5.0 + 12.0 * w12) / 2, kTol);
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, {}, mask, 1.0, 2.0), 0), (25.0 + 144.0 * w12) / 2,
              kTol);
  // default p = 0.8 (Tran & Liu 2018)
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, {}, mask, 1.0, 0.8), 0),
              (std::pow(5.0, 0.8) + std::pow(12.0, 0.8) * w12) / 2, kTol);
  // default alpha = 15
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, {}, mask), 0),
              (std::pow(5.0, 0.8) + std::pow(12.0, 0.8) * std::exp(-15 * std::sqrt(2.0))) / 2, kTol);
  // pixel 2 not seen in the input: only pair (0,1) counts, still over 2 pairs
  auto validity = torch::tensor({1, 1, 0}).view({1, 1, 1, 3}).to(torch::kBool);
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, validity, mask, 1.0, 1.0), 0), 5.0 / 2, kTol);
  // pixel 2 outside the mask: one pair in the mask
  EXPECT_NEAR(At(AlbedoConstancyLoss(albedo, input, {}, BoolMask({1, 1, 0}, 1, 3), 1.0, 1.0), 0), 5.0,
              kTol);
  // vertical pairs: 2 x 1 map, d = (0, 0, 2)
  auto a2 = Map({{0, 0}, {0, 0}, {0, 2}}, 2, 1);
  auto i2 = Map({{1, 1}, {1, 1}, {1, 1}}, 2, 1);
  EXPECT_NEAR(At(AlbedoConstancyLoss(a2, i2, {}, BoolMask({1, 1}, 2, 1), 15.0, 1.0), 0), 2.0, kTol);
  // constant albedo -> 0
  EXPECT_EQ(At(AlbedoConstancyLoss(torch::full({1, 3, 4, 4}, 0.3, torch::kFloat64),
                                   torch::rand({1, 3, 4, 4}, torch::kFloat64), {},
                                   torch::ones({4, 4}, torch::kBool)),
               0),
            0.0);
}

TEST(AlbedoConstancyLoss, WeightsCarryNoGradient) {
  auto albedo = torch::rand({1, 3, 4, 4}, torch::kFloat64).requires_grad_(true);
  auto input = torch::rand({1, 3, 4, 4}, torch::kFloat64).requires_grad_(true);
  AlbedoConstancyLoss(albedo, input, {}, torch::ones({4, 4}, torch::kBool)).mean.backward();
  EXPECT_TRUE(albedo.grad().defined());
  EXPECT_FALSE(input.grad().defined());
}

TEST(Chromaticity, UnitNorm) {
  auto c = Chromaticity(Map({{3, 0}, {4, 0}, {0, 0}}, 1, 2));
  EXPECT_NEAR(c[0][0][0][0].item<double>(), 0.6, kTol);
  EXPECT_NEAR(c[0][1][0][0].item<double>(), 0.8, kTol);
  EXPECT_EQ(c[0][0][0][1].item<double>(), 0.0);  // black pixel: 0, not NaN
}

// ---------------------------------------------------------------------------
// eq. 10

TEST(ShapeSmoothnessLoss, HandComputed) {
  // x = 0 1 5 in a row: residuals 0-1, 1-(0+5)/2, 5-1 -> 1, 1.5, 4
  auto s = Map({{0, 1, 5}, {0, 0, 0}, {0, 0, 0}}, 1, 3);
  EXPECT_NEAR(At(ShapeSmoothnessLoss(s, BoolMask({1, 1, 1}, 1, 3)), 0), (1.0 + 1.5 + 4.0) / 3, kTol);
  // pixel 2 outside the mask: neighbours inside the mask only -> 1, 1
  EXPECT_NEAR(At(ShapeSmoothnessLoss(s, BoolMask({1, 1, 0}, 1, 3)), 0), (1.0 + 1.0) / 2, kTol);
  // 3 x 3, z = 4 at the centre: centre 4, edge pixels |0 - 4/3|, corners 0; 9 pixels
  std::vector<double> z(9, 0.0);
  z[4] = 4.0;
  auto s3 = Map({std::vector<double>(9, 0.0), std::vector<double>(9, 0.0), z}, 3, 3);
  EXPECT_NEAR(At(ShapeSmoothnessLoss(s3, torch::ones({3, 3}, torch::kBool)), 0), (4.0 + 4 * 4.0 / 3) / 9,
              kTol);
  // a constant map is perfectly smooth
  EXPECT_EQ(At(ShapeSmoothnessLoss(torch::full({1, 3, 4, 5}, 2.5, torch::kFloat64),
                                   torch::ones({4, 5}, torch::kBool)),
               0),
            0.0);
}

// ---------------------------------------------------------------------------
// eqs. 14, 16

TEST(ResidualMagnitudeLoss, HandComputedAndZero) {
  auto proxy = torch::rand({1, 2, 1, 2}, torch::kFloat64);
  auto map = proxy + Map({{1, 3}, {-2, 1}}, 1, 2);  // per-pixel l1: 3, 4
  EXPECT_NEAR(At(ResidualMagnitudeLoss(map, proxy, BoolMask({1, 1}, 1, 2)), 0), 3.5, kTol);
  EXPECT_NEAR(At(ResidualMagnitudeLoss(map, proxy, BoolMask({1, 0}, 1, 2)), 0), 3.0, kTol);
  EXPECT_EQ(At(ResidualMagnitudeLoss(proxy, proxy, BoolMask({1, 1}, 1, 2)), 0), 0.0);
}

TEST(ResidualSymmetryLoss, HandComputedOnOccludedPixels) {
  torch::manual_seed(2);
  auto proxy = torch::rand({1, 3, 1, 4}, torch::kFloat64);
  auto delta = Map({{9, 8, 7, 6}, {-1, 5, 0, 2}, {1, 2, 3, 5}}, 1, 4);  // only z = 1 2 3 5 matters
  auto shape = proxy + delta;
  // dz - flip(dz) = -4 -1 1 4
  auto vis = torch::tensor({1.0, 1.0, 1.0, 0.0}, torch::kFloat64).view({1, 1, 1, 4});
  auto mask = BoolMask({1, 1, 1, 1}, 1, 4);
  EXPECT_NEAR(At(ResidualSymmetryLoss(shape, proxy, vis, mask), 0), 4.0 / 4, kTol);  // T = 0 0 0 1
  EXPECT_NEAR(At(ResidualSymmetryLoss(shape, proxy, vis, mask, ResidualSymmetryMask::kAsGiven), 0),
              (4.0 + 1.0 + 1.0) / 4, kTol);
  // mask F T T T: only columns 1, 2 have a mirror in the mask; occluded T = 0 there
  EXPECT_NEAR(At(ResidualSymmetryLoss(shape, proxy, vis, BoolMask({0, 1, 1, 1}, 1, 4)), 0), 0.0, kTol);
  // everything occluded, bool visibility
  auto none = torch::zeros({1, 1, 1, 4}, torch::kBool);
  EXPECT_NEAR(At(ResidualSymmetryLoss(shape, proxy, none, mask), 0), 10.0 / 4, kTol);
  // zero when true == proxy, and when the depth residual is symmetric
  EXPECT_EQ(At(ResidualSymmetryLoss(proxy, proxy, none, mask), 0), 0.0);
  auto symmetric = proxy + Map({{1, 2, 3, 4}, {4, 3, 2, 1}, {1, 2, 2, 1}}, 1, 4);
  EXPECT_EQ(At(ResidualSymmetryLoss(symmetric, proxy, none, mask), 0), 0.0);
}

TEST(LatentPriorLoss, HandComputed) {
  auto f = torch::tensor({1.0, 2.0, 0.0, 0.0}, torch::kFloat64).view({2, 2});
  auto r = LatentPriorLoss(f);
  EXPECT_NEAR(At(r, 0), 2.5, kTol);
  EXPECT_NEAR(At(r, 1), 0.0, kTol);
}

// ---------------------------------------------------------------------------
// gradients

// Central differences of sum(loss(x).per_image) w.r.t. every entry of x.
void ExpectGradientMatchesFiniteDifferences(const at::Tensor& x0,
                                            const std::function<LossResult(const at::Tensor&)>& loss,
                                            double tol = 1e-5) {
  auto x = x0.clone().requires_grad_(true);
  auto y = loss(x).per_image.sum();
  auto grad = torch::autograd::grad({y}, {x})[0];
  auto flat = x0.clone().view({-1});
  const double h = 1e-6;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto xp = flat.clone(), xm = flat.clone();
    xp[i] += h;
    xm[i] -= h;
    const double fp = loss(xp.view(x0.sizes())).per_image.sum().item<double>();
    const double fm = loss(xm.view(x0.sizes())).per_image.sum().item<double>();
    const double fd = (fp - fm) / (2 * h);
    const double g = grad.view({-1})[i].item<double>();
    EXPECT_NEAR(g, fd, tol * std::max(1.0, std::abs(fd))) << "entry " << i;
  }
}

TEST(LossGradients, AutogradMatchesFiniteDifferences) {
  torch::manual_seed(3);
  const auto opt = torch::kFloat64;
  auto input = torch::rand({2, 3, 3, 4}, opt);
  auto cov = torch::rand({2, 1, 3, 4}) > 0.3;
  ExpectGradientMatchesFiniteDifferences(torch::rand({2, 3, 3, 4}, opt),
                                         [&](const at::Tensor& x) { return PhotometricLoss(x, input, cov); });
  auto mask = torch::ones({3, 4}, torch::kBool);
  mask[0][0] = false;
  ExpectGradientMatchesFiniteDifferences(torch::rand({2, 3, 3, 4}, opt),
                                         [&](const at::Tensor& x) { return ShapeSmoothnessLoss(x, mask); });
  auto input_uv = torch::rand({2, 3, 3, 4}, opt);
  ExpectGradientMatchesFiniteDifferences(torch::rand({2, 3, 3, 4}, opt), [&](const at::Tensor& x) {
    return AlbedoConstancyLoss(x, input_uv, {}, mask, 2.0, 0.8);
  });
  auto target = torch::rand({2, 5, 2}, opt) * 10;
  ExpectGradientMatchesFiniteDifferences(torch::rand({2, 5, 2}, opt) * 10,
                                         [&](const at::Tensor& x) { return LandmarkLoss(x, target, {}, 7.0); });
}

// ---------------------------------------------------------------------------
// eq. 15

TEST(ReconstructionPairings, PaperPairsAndNeverTrueTrue) {
  // shape 1 / proxy 2, albedo 0.1 / proxy 0.2; the "renderer" multiplies them.
  auto opts = torch::dtype(torch::kFloat64);
  auto s = torch::full({1, 3, 2, 2}, 1.0, opts), sp = torch::full({1, 3, 2, 2}, 2.0, opts);
  auto a = torch::full({1, 3, 2, 2}, 0.1, opts), ap = torch::full({1, 3, 2, 2}, 0.2, opts);
  auto input = torch::zeros({1, 3, 2, 2}, opts);
  std::vector<std::pair<double, double>> calls;
  RenderFn render = [&](const at::Tensor& shape, const at::Tensor& albedo) {
    calls.emplace_back(shape[0][0][0][0].item<double>(), albedo[0][0][0][0].item<double>());
    return Rendering{shape * albedo, torch::ones({1, 1, 2, 2}, torch::kBool)};
  };
  auto r = ReconstructionPairings(s, sp, a, ap, input, render);
  ASSERT_EQ(calls.size(), 3u);
  for (const auto& c : calls) EXPECT_FALSE(c.first == 1.0 && c.second == 0.1) << "rendered I(S, A)";
  ASSERT_EQ(r.terms.size(), 3u);
  const double k = std::sqrt(3.0);  // ||(c, c, c)||_2 = c sqrt 3
  EXPECT_EQ(r.terms[0].first, kProxyShapeProxyAlbedo);
  EXPECT_NEAR(r.terms[0].second.per_image[0].item<double>(), 0.4 * k, kTol);
  EXPECT_EQ(r.terms[1].first, kProxyShapeTrueAlbedo);
  EXPECT_NEAR(r.terms[1].second.per_image[0].item<double>(), 0.2 * k, kTol);
  EXPECT_EQ(r.terms[2].first, kTrueShapeProxyAlbedo);
  EXPECT_NEAR(r.terms[2].second.per_image[0].item<double>(), 0.2 * k, kTol);
  EXPECT_NEAR(r.total.per_image[0].item<double>(), 0.8 * k, kTol);

  calls.clear();
  auto fit = ReconstructionPairings(s, sp, a, ap, input, render, kFitPairings);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(1.0, 0.1));
  EXPECT_NEAR(fit.total.per_image[0].item<double>(), 0.1 * k, kTol);

  calls.clear();
  auto one = ReconstructionPairings(s, sp, a, ap, input, render, ParsePairings("true-proxy"));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(1.0, 0.2));
}

TEST(ReconstructionPairings, ParseNames) {
  EXPECT_EQ(ParsePairings("paper"), kPaperPairings);
  EXPECT_EQ(ParsePairings("fit"), unsigned(kTrueShapeTrueAlbedo));
  EXPECT_EQ(ParsePairings("proxy-proxy, true-true"), unsigned(kProxyShapeProxyAlbedo | kTrueShapeTrueAlbedo));
  EXPECT_EQ(PairingsToString(kPaperPairings), "proxy-proxy,proxy-true,true-proxy");
  EXPECT_THROW(ParsePairings("true-false"), UsageError);
  EXPECT_THROW(ParsePairings(""), UsageError);
}

}  // namespace
}  // namespace facebatch::fit
