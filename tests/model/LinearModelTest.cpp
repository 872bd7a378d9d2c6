// The linear (PCA) kind behind the same interface (the paper's "Linear" baseline).
#include <gtest/gtest.h>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "core/Error.h"

namespace facebatch::model {
namespace {
using testutil::TinyConfig;

TEST(LinearModel, UntrainedDecodesTheTemplateAtZero) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  c.kind = ModelKind::kLinear;
  auto model = testutil::TinyModel(c);
  auto s = model.DecodeShape(torch::zeros({2, c.latent_shape}));
  EXPECT_TRUE(torch::allclose(s.value[1], model.face_template().mean_shape));
  EXPECT_TRUE(torch::equal(s.value, s.proxy));
  auto a = model.DecodeAlbedo(torch::ones({1, c.latent_albedo}));
  EXPECT_FALSE(torch::allclose(a.value[0], model.face_template().mean_albedo));
  EXPECT_TRUE(model.shape_decoder_parameters().empty());  // PCA bases are fixed buffers
  EXPECT_EQ(model.CountParameters().shape_decoder, (c.latent_shape + 1) * 3 * c.uv_rows * c.uv_cols);
}

TEST(LinearModel, BuildRecoversALowRankFamily) {
  torch::NoGradGuard g;
  auto c = TinyConfig(24, 28);
  const int N = 30, K = 3;
  torch::manual_seed(21);
  auto D = 3 * c.uv_rows * c.uv_cols;
  auto mean = torch::randn({D});
  auto basis = torch::randn({K, D});
  auto coeffs = torch::randn({N, K}) * torch::tensor({3.0f, 2.0f, 1.0f});
  auto shapes = (mean + torch::matmul(coeffs, basis)).view({N, 3, c.uv_rows, c.uv_cols});
  auto albedos = (0.5 + 0.1 * torch::matmul(torch::randn({N, 2}), torch::randn({2, D}))).view({N, 3, c.uv_rows, c.uv_cols});
  auto model = BuildLinearModel(shapes, albedos, K, 2, testutil::TemplateFor(c), c, 0);
  EXPECT_EQ(model.config().kind, ModelKind::kLinear);
  EXPECT_EQ(model.config().latent_shape, K);
  // Every sample is mean + basis f for the least-squares f: reconstruct it exactly.
  auto b0 = model.DecodeShape(torch::zeros({1, K})).value.flatten();
  std::vector<torch::Tensor> cols;
  for (int k = 0; k < K; ++k) {
    auto e = torch::zeros({1, K});
    e[0][k] = 1;
    cols.push_back(model.DecodeShape(e).value.flatten() - b0);
  }
  auto B = torch::stack(cols, 1);  // [D, K]
  auto x = shapes.view({N, -1}) - b0;
  auto f = std::get<0>(torch::linalg_lstsq(B, x.t(), {}, {}));  // [K, N]
  auto rec = model.DecodeShape(f.t().contiguous()).value.view({N, -1});
  EXPECT_LT((rec - shapes.view({N, -1})).abs().max().item<float>(), 1e-3);
  // Bases are scaled so the data's latents have unit variance (and are uncorrelated).
  auto var = f.var(1);
  EXPECT_TRUE(torch::allclose(var, torch::ones({K}), 1e-3, 1e-3)) << var;
  // Rank checks.
  EXPECT_THROW(BuildLinearModel(shapes, albedos, N, 2, testutil::TemplateFor(c), c), Error);
  EXPECT_THROW(BuildLinearModel(shapes.slice(0, 0, 5), albedos, 2, 2, testutil::TemplateFor(c), c), Error);
}

TEST(LinearModel, SaveLoadRoundTrip) {
  torch::NoGradGuard g;
  auto c = TinyConfig(24, 28);
  torch::manual_seed(2);
  auto shapes = torch::randn({6, 3, 24, 28});
  auto albedos = torch::rand({6, 3, 24, 28});
  auto model = BuildLinearModel(shapes, albedos, 4, 3, testutil::TemplateFor(c), c, 0);
  model.eval();
  testing::TempDir dir;
  auto p = (dir / "linear.h5").string();
  model.Save(p);
  auto loaded = FaceModel::Load(p);
  loaded.eval();
  EXPECT_EQ(loaded.config().kind, ModelKind::kLinear);
  auto f = torch::randn({2, 4});
  EXPECT_TRUE(torch::equal(model.DecodeShape(f).value, loaded.DecodeShape(f).value));
  auto fa = torch::randn({2, 3});
  EXPECT_TRUE(torch::equal(model.DecodeAlbedo(fa).value, loaded.DecodeAlbedo(fa).value));
  EXPECT_EQ(model.WeightsHash(), loaded.WeightsHash());
}

TEST(SyntheticTemplate, GridTopologyIsConsistent) {
  auto t = SyntheticTemplate(30, 34);
  const auto& tp = t.topology;
  int64_t N = tp.pixel_of_vertex.size(0);
  EXPECT_EQ(N, tp.mask.sum().item<int64_t>());
  EXPECT_GT(tp.triangles.size(0), N);  // ~2 triangles per vertex
  EXPECT_TRUE((tp.landmarks68 >= 0).all().item<bool>());
  EXPECT_TRUE((tp.landmarks68 < N).all().item<bool>());
  // The elliptic mask is symmetric, so the flip is an involution over all vertices.
  EXPECT_TRUE((tp.flip >= 0).all().item<bool>());
  EXPECT_TRUE(torch::equal(tp.flip.index_select(0, tp.flip), torch::arange(N)));
  // Counter-clockwise seen from +z with model y up (row r -> y = -r).
  auto px = tp.pixel_of_vertex;
  auto x = (px % 34).to(torch::kFloat), y = -torch::div(px, 34, "floor").to(torch::kFloat);
  auto a = tp.triangles.select(1, 0), b = tp.triangles.select(1, 1), c = tp.triangles.select(1, 2);
  auto cross = (x.index_select(0, b) - x.index_select(0, a)) * (y.index_select(0, c) - y.index_select(0, a)) -
               (y.index_select(0, b) - y.index_select(0, a)) * (x.index_select(0, c) - x.index_select(0, a));
  EXPECT_TRUE((cross > 0).all().item<bool>());
  // The mean shape's z points towards the camera inside the mask.
  EXPECT_GT(t.mean_shape[2].masked_select(tp.mask).min().item<float>(), -1e-6);
}

}  // namespace
}  // namespace facebatch::model
