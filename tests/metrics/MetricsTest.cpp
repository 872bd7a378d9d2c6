// Hand-computed values of the paper's metrics on tiny inputs (lib/metrics/Metrics.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/Error.h"
#include "metrics/Metrics.h"
#include "render/Colour.h"

namespace facebatch::metrics {
namespace {

TEST(L21Error, MeanOfRgbNormsOverMaskedPixels) {
  auto rendered = torch::zeros({2, 3, 2, 2});
  auto input = torch::zeros({2, 3, 2, 2});
  // image 0: pixel (0,0) differs by (0.3, 0.4, 0) -> 0.5; (0,1) by (1, 0, 0) -> 1;
  // (1,0) by (0, 0, 0.2) but not covered; (1,1) covered, equal -> 0. Mean 1.5 / 3.
  input[0][0][0][0] = 0.3;
  input[0][1][0][0] = 0.4;
  input[0][0][0][1] = 1.0;
  input[0][2][1][0] = 0.2;
  auto mask = torch::zeros({2, 1, 2, 2});
  mask[0][0][0][0] = 1;
  mask[0][0][0][1] = 1;
  mask[0][0][1][1] = 1;
  // image 1: nothing covered -> NaN (not 0). The values above are sRGB (the metric's
  // space); L21Error takes linear RGB, as renders and decoded crops are.
  input = render::SrgbToLinear(input);
  auto e = L21Error(rendered, input, mask);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2}));
  EXPECT_NEAR(e[0].item<double>(), 0.5, 1e-7);
  EXPECT_TRUE(std::isnan(e[1].item<double>()));
  // Covering the (1,0) pixel too adds 0.2: (1.5 + 0.2) / 4.
  mask[0][0][1][0] = 1;
  EXPECT_NEAR(L21Error(rendered, input, mask)[0].item<double>(), 1.7 / 4, 1e-7);
  EXPECT_THROW(L21Error(rendered, input, torch::ones({2, 1, 3, 2})), Error);
}

/// 68 points inside the box [0, 10] x [0, 40]: outer eye corners (0, 0) and (10, 0).
torch::Tensor GroundTruth68() {
  auto g = torch::full({1, 68, 2}, 5.0, torch::kFloat64);
  g[0][kOuterEyeLeft68][0] = 0, g[0][kOuterEyeLeft68][1] = 0;
  g[0][kOuterEyeRight68][0] = 10, g[0][kOuterEyeRight68][1] = 0;
  g[0][8][0] = 5, g[0][8][1] = 40;  // chin
  return g;
}

TEST(LandmarkNme, InterOcularAndBoundingBoxNormalisations) {
  auto g = GroundTruth68();
  auto p = g + torch::tensor({3.0, 4.0}, torch::kFloat64);  // every point off by 5 px
  EXPECT_NEAR(LandmarkNormaliser(g, NmeNormalisation::kInterOcular)[0].item<double>(), 10.0, 1e-12);
  EXPECT_NEAR(LandmarkNormaliser(g, NmeNormalisation::kBoundingBox)[0].item<double>(), 20.0, 1e-12);  // sqrt(10*40)
  EXPECT_NEAR(LandmarkNme(p, g, NmeNormalisation::kInterOcular)[0].item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(LandmarkNme(p, g, NmeNormalisation::kBoundingBox)[0].item<double>(), 0.25, 1e-12);
  EXPECT_NEAR(LandmarkNme(g, g, NmeNormalisation::kInterOcular)[0].item<double>(), 0.0, 1e-12);
  EXPECT_STREQ(NmeNormalisationName(NmeNormalisation::kBoundingBox), "bbox");
}

TEST(LandmarkNme, WeightsSelectPoints) {
  auto g = GroundTruth68();
  auto p = g.clone();
  p[0][0][0] += 6;  // only point 0 is off, by 6 px (and point 8 by 8 px)
  p[0][8][1] += 8;
  auto w = torch::zeros({1, 68});
  w[0][0] = 1;
  w[0][8] = 1;
  // mean over the two weighted points: (6 + 8) / 2 = 7; inter-ocular 10.
  EXPECT_NEAR(LandmarkNme(p, g, NmeNormalisation::kInterOcular, w)[0].item<double>(), 0.7, 1e-12);
  // all 68: (6 + 8) / 68 / 10
  EXPECT_NEAR(LandmarkNme(p, g, NmeNormalisation::kInterOcular)[0].item<double>(), 14.0 / 68 / 10, 1e-12);
  // box of the weighted ground-truth points only: (5, 5) and (5, 40) -> w = 0 -> sqrt(0) -> NaN
  EXPECT_TRUE(std::isnan(LandmarkNme(p, g, NmeNormalisation::kBoundingBox, w)[0].item<double>()));
  // no weighted point -> NaN
  EXPECT_TRUE(std::isnan(LandmarkNme(p, g, NmeNormalisation::kInterOcular, torch::zeros({1, 68}))[0].item<double>()));
  // five points cannot be normalised by the 68-point eye corners
  EXPECT_THROW(LandmarkNme(torch::zeros({1, 5, 2}), torch::zeros({1, 5, 2}), NmeNormalisation::kInterOcular), Error);
  EXPECT_NEAR(LandmarkNme(torch::zeros({1, 5, 2}), torch::tensor({0., 0., 2., 0., 2., 8., 0., 8., 1., 1.}).view({1, 5, 2}),
                          NmeNormalisation::kBoundingBox)[0].item<double>(),
              (0 + 2 + std::sqrt(68.0) + 8 + std::sqrt(2.0)) / 5 / 4, 1e-12);
}

/// A tetrahedron: vertex 0 and 1 are the "eye corners" (2 units apart).
torch::Tensor Tetra() {
  return torch::tensor({0., 0., 0., 2., 0., 0., 0., 2., 0., 0., 0., 2.}, torch::kFloat64).view({1, 4, 3});
}
torch::Tensor EyeIds() {
  auto lm = torch::zeros({68}, torch::kLong);
  lm[kOuterEyeRight68] = 1;
  return lm;
}

TEST(ShapeNme, DistanceOverInterOcular) {
  auto g = Tetra();
  auto p = g + torch::tensor({0., 0., 1.}, torch::kFloat64);  // every vertex 1 unit off
  EXPECT_NEAR(ShapeNme(p, g, EyeIds(), ShapeAlignment::kNone)[0].item<double>(), 0.5, 1e-12);
  // a translation is removed by the similarity alignment
  EXPECT_NEAR(ShapeNme(p, g, EyeIds(), ShapeAlignment::kSimilarity)[0].item<double>(), 0.0, 1e-9);
  // weights: only vertex 3 compared, moved by 3 units -> 3 / 2
  auto q = g.clone();
  q[0][3][0] += 3;
  auto w = torch::tensor({0., 0., 0., 1.}).view({1, 4});
  EXPECT_NEAR(ShapeNme(q, g, EyeIds(), ShapeAlignment::kNone, w)[0].item<double>(), 1.5, 1e-12);
  EXPECT_NEAR(ShapeNme(q, g, EyeIds(), ShapeAlignment::kNone)[0].item<double>(), 3.0 / 4 / 2, 1e-12);
}

TEST(ShapeNme, SimilarityRemovesRotationScaleTranslationButNotReflection) {
  torch::manual_seed(3);
  auto g = torch::randn({2, 30, 3}, torch::kFloat64);
  // rotation about z by 0.7 rad, scale 2.5, translation
  const double c = std::cos(0.7), s = std::sin(0.7);
  auto R = torch::tensor({c, -s, 0., s, c, 0., 0., 0., 1.}, torch::kFloat64).view({3, 3});
  auto p = 2.5 * g.matmul(R.t()) + torch::tensor({1., -2., 3.}, torch::kFloat64);
  auto lm = EyeIds();
  EXPECT_GT(ShapeNme(p, g, lm, ShapeAlignment::kNone).min().item<double>(), 0.5);
  auto aligned = ShapeNme(p, g, lm, ShapeAlignment::kSimilarity);
  EXPECT_LT(aligned.max().item<double>(), 1e-9);
  EXPECT_TRUE(torch::allclose(SimilarityAlign(p, g), g, 1e-9, 1e-9));
  // a mirror image is not a similarity: the error stays
  auto mirrored = g * torch::tensor({-1., 1., 1.}, torch::kFloat64);
  EXPECT_GT(ShapeNme(mirrored, g, lm, ShapeAlignment::kSimilarity).min().item<double>(), 0.05);
  // noise: alignment never makes it worse than no alignment
  auto noisy = g + 0.1 * torch::randn_like(g);
  auto a = ShapeNme(noisy, g, lm, ShapeAlignment::kSimilarity), b = ShapeNme(noisy, g, lm, ShapeAlignment::kNone);
  EXPECT_TRUE((a <= b + 1e-12).all().item<bool>());
  EXPECT_EQ(ParseShapeAlignment("none"), ShapeAlignment::kNone);
  EXPECT_THROW(ParseShapeAlignment("rigid"), UsageError);
}

TEST(EstimateSimilarity, RecoversAKnownTransform) {
  torch::manual_seed(5);
  auto x = torch::randn({1, 40, 3}, torch::kFloat64);
  const double c = std::cos(-0.4), s = std::sin(-0.4);
  auto R = torch::tensor({c, 0., s, 0., 1., 0., -s, 0., c}, torch::kFloat64).view({3, 3});
  auto y = 0.8 * x.matmul(R.t()) + torch::tensor({0.5, 1., -2.}, torch::kFloat64);
  auto T = EstimateSimilarity(x, y);
  EXPECT_NEAR(T.scale[0].item<double>(), 0.8, 1e-12);
  EXPECT_TRUE(torch::allclose(T.rotation[0], R, 1e-10, 1e-10));
  EXPECT_TRUE(torch::allclose(T.translation[0], torch::tensor({0.5, 1., -2.}, torch::kFloat64), 1e-10, 1e-10));
  EXPECT_TRUE(torch::allclose(T.Apply(x), y, 1e-10, 1e-10));
}

TEST(ShapeSpread, TheMeanFaceHasNoSpreadAndSimilaritiesDoNotCount) {
  torch::manual_seed(9);
  auto ref = torch::randn({25, 3}, torch::kFloat64);
  // Four copies of the reference, each moved by another similarity: spread 0.
  std::vector<at::Tensor> copies;
  for (int k = 0; k < 4; ++k) {
    const double c = std::cos(0.3 * k), s = std::sin(0.3 * k);
    auto R = torch::tensor({c, -s, 0., s, c, 0., 0., 0., 1.}, torch::kFloat64).view({3, 3});
    copies.push_back((1.0 + 0.2 * k) * ref.matmul(R.t()) + 0.5 * k);
  }
  auto same = torch::stack(copies);
  EXPECT_LT(ShapeSpread(same, ref).max().item<double>(), 1e-9);
  // By hand: a planar reference (points (+-1, 0), (0, +-2) in z = 0) and out-of-plane
  // offsets d_z = +-e orthogonal to 1, x and y (no rotation, translation or scale of
  // the plane can produce them). Umeyama then aligns ref +- d onto ref with R = I,
  // t = 0 (the centroid is 0) and s = sum |ref|^2 / (sum |ref|^2 + n e^2), so every
  // vertex lies s e from the pair's mean: spread = s e for both shapes.
  auto sym = torch::zeros({4, 3}, torch::kFloat64);
  sym[0][0] = 1, sym[1][0] = -1, sym[2][1] = 2, sym[3][1] = -2;
  auto spread_of = [&](double e) {
    auto d = torch::zeros({4, 3}, torch::kFloat64);
    d[0][2] = e, d[1][2] = e, d[2][2] = -e, d[3][2] = -e;
    const double s = 10.0 / (10.0 + 4 * e * e);
    return std::make_pair(torch::stack({sym + d, sym - d}), s * e);
  };
  auto [shapes, expected] = spread_of(0.1);
  auto spread = ShapeSpread(shapes, sym);
  EXPECT_NEAR(spread[0].item<double>(), expected, 1e-9);
  EXPECT_NEAR(spread[1].item<double>(), expected, 1e-9);
  // Ratio: half the offsets -> (s' e / 2) / (s e); the mean face -> 0.
  auto [half, expected_half] = spread_of(0.05);
  auto r = ShapeSpreadRatio(half, shapes, sym);
  EXPECT_NEAR(r.rms, expected_half / expected, 1e-9);
  EXPECT_NEAR(r.median, expected_half / expected, 1e-9);
  auto collapsed = torch::stack({sym, sym});
  EXPECT_NEAR(ShapeSpreadRatio(collapsed, shapes, sym).rms, 0.0, 1e-9);
  EXPECT_TRUE(std::isnan(ShapeSpreadRatio(shapes.slice(0, 0, 1), shapes.slice(0, 0, 1), sym).rms));
}

TEST(Summarise, MeanMedianPercentilesIgnoreNaN) {
  auto s = Summarise({4, 1, std::nan(""), 3, 2});
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_NEAR(s.p90, 3.7, 1e-12);   // numpy.percentile([1,2,3,4], 90)
  EXPECT_NEAR(s.p95, 3.85, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 4);
  auto e = Summarise({std::nan("")});
  EXPECT_EQ(e.count, 0);
  EXPECT_TRUE(std::isnan(e.mean));
}

}  // namespace
}  // namespace facebatch::metrics
