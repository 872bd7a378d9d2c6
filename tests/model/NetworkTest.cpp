// Shapes, global-local fusion, proxies, gradients and eval determinism of the
// nonlinear 3DMM networks (paper sections 3.2-3.4).
#include <gtest/gtest.h>

#include <array>
#include <limits>

#include "ModelTestUtil.h"
#include "core/Env.h"
#include "core/Error.h"
#include "model/Networks.h"
#include "render/Render.h"
#include "render/Topology.h"

namespace facebatch::model {
namespace {
using testutil::TinyConfig;
using testutil::TinyModel;

void ExpectShape(const torch::Tensor& t, std::vector<int64_t> shape, const char* what) {
  ASSERT_TRUE(t.defined()) << what;
  EXPECT_EQ(t.sizes(), torch::IntArrayRef(shape)) << what;
  EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << what;
}

void CheckAllShapes(const FaceModel& model, int B) {
  const auto& c = model.config();
  torch::manual_seed(3);
  auto images = torch::rand({B, 3, c.image_size, c.image_size});
  auto e = model.Encode(images);
  ExpectShape(e.f_shape, {B, c.latent_shape}, "f_shape");
  ExpectShape(e.f_albedo, {B, c.latent_albedo}, "f_albedo");
  ExpectShape(e.projection, {B, 2, 4}, "projection");
  ExpectShape(e.lighting, {B, 27}, "lighting");
  auto s = model.DecodeShape(e.f_shape);
  auto a = model.DecodeAlbedo(e.f_albedo);
  for (const auto* t : {&s.value, &s.proxy, &a.value, &a.proxy}) ExpectShape(*t, {B, 3, c.uv_rows, c.uv_cols}, "map");
  ExpectShape(s.residual(), {B, 3, c.uv_rows, c.uv_cols}, "residual");
}

TEST(Networks, OutputShapesTinyAndOddSizes) {
  torch::NoGradGuard g;
  for (auto [U, V] : {std::pair{40, 48}, std::pair{37, 53}, std::pair{29, 31}}) {
    SCOPED_TRACE(::testing::Message() << U << "x" << V);
    auto model = TinyModel(TinyConfig(U, V));
    model.eval();
    CheckAllShapes(model, 2);
  }
}

TEST(Networks, OutputShapesDemoPreset) {
  torch::NoGradGuard g;
  auto c = Preset("demo");
  auto model = FaceModel::Create(c, testutil::TemplateFor(c), 0);
  model.eval();
  CheckAllShapes(model, 2);
  auto odd = c;
  odd.uv_rows = 101, odd.uv_cols = 117;  // not divisible by 2^4
  odd.regions = DefaultRegions(101, 117);
  auto model2 = FaceModel::Create(odd, testutil::TemplateFor(odd), 0);
  model2.eval();
  CheckAllShapes(model2, 1);
}

TEST(Networks, OutputShapesPaperPresetBatch1) {
  torch::NoGradGuard g;
  auto c = Preset("paper");
  auto model = FaceModel::Create(c, testutil::TemplateFor(c), 0);
  model.eval();
  CheckAllShapes(model, 1);
  auto n = model.CountParameters();
  EXPECT_GT(n.encoder, 0);
  EXPECT_EQ(n.shape_decoder, n.albedo_decoder);  // l_S == l_A in the paper preset
}

TEST(Networks, UntrainedModelStartsNearTemplateAndIsMasked) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.eval();
  auto s = model.DecodeShape(torch::randn({2, c.latent_shape}));
  const auto& t = model.face_template();
  auto outside = ~t.topology.mask;
  // Offsets are added to the mean shape inside the mask only.
  EXPECT_EQ((s.value - t.mean_shape.unsqueeze(0)).abs().masked_select(outside.expand_as(s.value)).max().item<float>(), 0.f);
  EXPECT_GT((s.value - t.mean_shape.unsqueeze(0)).abs().max().item<float>(), 0.f);
}

TEST(Networks, LocalPathwayLandsOnlyInItsBox) {
  torch::NoGradGuard g;
  auto c = TinyConfig(40, 48);
  nets::GlobalLocalDecoder dec(c, c.latent_shape);
  dec.eval();
  torch::manual_seed(5);
  auto f = torch::randn({2, c.latent_shape});
  auto before = dec.Decode(f, true);
  for (int region = 0; region < render::kNumRegions; ++region) {
    SCOPED_TRACE(region);
    auto& p = dec.locals[region];
    auto saved = p->fc->weight.clone();
    p->fc->weight.add_(torch::randn_like(saved) * 0.5);
    auto after = dec.Decode(f, true);
    p->fc->weight.copy_(saved);
    auto diff = (after.local_features - before.local_features).abs().amax({0, 1});  // [U, V]
    const auto& b = c.regions[region];
    auto inside = torch::zeros({c.uv_rows, c.uv_cols}, torch::kBool);
    inside.slice(0, b.row0, b.row0 + b.rows).slice(1, b.col0, b.col0 + b.cols).fill_(true);
    EXPECT_GT(diff.masked_select(inside).max().item<float>(), 1e-4) << "the pathway must change its box";
    EXPECT_EQ(diff.masked_select(~inside).max().item<float>(), 0.f) << "nothing outside the box may change";
    EXPECT_TRUE(torch::equal(after.global_features, before.global_features));
  }
}

TEST(Networks, FuseLocalZeroPadsAndMaxPoolsOverlaps) {
  torch::NoGradGuard g;
  auto c = TinyConfig(40, 48);
  nets::GlobalLocalDecoder dec(c, c.latent_shape);
  std::vector<torch::Tensor> outs;
  torch::manual_seed(9);
  for (int i = 0; i < render::kNumRegions; ++i)
    outs.push_back(torch::randn({1, 2, c.regions[i].rows, c.regions[i].cols}) - 0.5);  // mostly negative
  auto fused = dec.FuseLocal(outs);
  ASSERT_EQ(fused.sizes(), torch::IntArrayRef({1, 2, c.uv_rows, c.uv_cols}));
  auto expected = torch::full({1, 2, c.uv_rows, c.uv_cols}, -1e30f);
  auto covered = torch::zeros({c.uv_rows, c.uv_cols}, torch::kBool);
  for (int i = 0; i < render::kNumRegions; ++i) {
    const auto& b = c.regions[i];
    auto view = expected.slice(2, b.row0, b.row0 + b.rows).slice(3, b.col0, b.col0 + b.cols);
    view.copy_(torch::maximum(view, outs[i]));
    covered.slice(0, b.row0, b.row0 + b.rows).slice(1, b.col0, b.col0 + b.cols).fill_(true);
  }
  expected = torch::where(covered, expected, torch::zeros_like(expected));
  EXPECT_TRUE(torch::allclose(fused, expected));
  // The default regions overlap (nose with eyes and mouth), so max-pooling is exercised,
  // and negative local features survive where only one box covers a pixel.
  EXPECT_LT(fused.min().item<float>(), 0.f);
}

TEST(Networks, FuseLocalGradientsMatchTheFullMapReduction) {
  // FuseLocal takes the maximum inside the boxes' union only; its values and gradients must
  // be those of the plain definition: every local output padded with -inf to the full map,
  // the maximum of the four, zeros where no box is.
  auto c = TinyConfig(40, 48);
  nets::GlobalLocalDecoder dec(c, c.latent_shape);
  torch::manual_seed(11);
  std::vector<torch::Tensor> outs;
  for (int i = 0; i < render::kNumRegions; ++i)
    outs.push_back(torch::randn({2, 3, c.regions[i].rows, c.regions[i].cols}).requires_grad_(true));
  std::vector<torch::Tensor> padded;
  for (int i = 0; i < render::kNumRegions; ++i) {
    const auto& b = c.regions[i];
    padded.push_back(torch::constant_pad_nd(
        outs[i], {b.col0, c.uv_cols - b.col0 - b.cols, b.row0, c.uv_rows - b.row0 - b.rows},
        -std::numeric_limits<double>::infinity()));
  }
  auto reference = std::get<0>(torch::stack(padded, 0).max(0));
  reference = torch::where(torch::isinf(reference), torch::zeros({}, reference.options()), reference);
  const auto fused = dec.FuseLocal(outs);
  EXPECT_TRUE(torch::equal(fused, reference));
  const auto weights = torch::randn_like(reference);
  const auto g_fused = torch::autograd::grad({fused}, outs, {weights});
  const auto g_reference = torch::autograd::grad({reference}, outs, {weights});
  for (int i = 0; i < render::kNumRegions; ++i) {
    EXPECT_TRUE(torch::equal(g_fused[i], g_reference[i])) << "region " << i;
    EXPECT_GT(g_fused[i].abs().sum().item<float>(), 0.f) << "region " << i;
  }
}

TEST(Networks, TransposedConvolutionAsFourPhaseConvolutionsIsTheSame) {
  // InferenceOptions::transposed_as_phases: a 4x4 stride-2 padding-1 transposed convolution as
  // four 2x2 convolutions (one per output phase), values and input gradients, odd sizes too.
  torch::manual_seed(21);
  for (auto [cin, cout, h, w] : {std::array<int64_t, 4>{5, 3, 4, 6}, {8, 6, 7, 5}, {3, 2, 1, 1}}) {
    auto x = torch::randn({2, cin, h, w}, torch::dtype(torch::kFloat64)).requires_grad_(true);
    auto weight = torch::randn({cin, cout, 4, 4}, torch::kFloat64), bias = torch::randn({cout}, torch::kFloat64);
    auto reference = torch::conv_transpose2d(x, weight, bias, 2, 1);
    auto phases = nets::ConvTranspose4x4Stride2AsPhases(x, weight, bias);
    ASSERT_EQ(phases.sizes(), reference.sizes());
    EXPECT_TRUE(torch::allclose(phases, reference, 1e-10, 1e-12)) << (phases - reference).abs().max().item<double>();
    auto g = torch::randn_like(reference);
    auto gx_phases = torch::autograd::grad({phases}, {x}, {g})[0];
    auto gx_reference = torch::autograd::grad({reference}, {x}, {g})[0];
    EXPECT_TRUE(torch::allclose(gx_phases, gx_reference, 1e-10, 1e-12));
  }
  // In a folded block (eval mode) above kPhaseConvMinWork the lever changes nothing but rounding;
  // the demo global pathway's second step is such a layer.
  nets::ConvBnElu block(64, 48, 4, 2, 1, true);
  block->train();
  {
    torch::NoGradGuard g;
    for (int i = 0; i < 4; ++i) block->forward(2.0 * torch::randn({4, 64, 12, 14}) + 0.5);  // running statistics
  }
  block->eval();
  ASSERT_GE(64 * 48 * 12 * 14, nets::kPhaseConvMinWork);
  auto x = torch::randn({3, 64, 12, 14}).requires_grad_(true);
  block->inference.transposed_as_phases = true;
  auto with = block->forward(x);
  block->inference.transposed_as_phases = false;
  auto without = block->forward(x);
  EXPECT_TRUE(torch::allclose(with, without, 1e-4, 1e-5)) << (with - without).abs().max().item<float>();
  auto g = torch::randn_like(with);
  EXPECT_TRUE(torch::allclose(torch::autograd::grad({with}, {x}, {g})[0], torch::autograd::grad({without}, {x}, {g})[0],
                              1e-4, 1e-5));
}

TEST(Networks, ProxyAndTrueHeadsDifferAndAblationsWork) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.eval();
  auto f = torch::randn({2, c.latent_shape});
  auto s = model.DecodeShape(f);
  EXPECT_GT(s.residual().abs().max().item<float>(), 1e-6);
  auto a = model.DecodeAlbedo(torch::randn({2, c.latent_albedo}));
  EXPECT_GT(a.residual().abs().max().item<float>(), 1e-6);

  auto no_proxy = c;
  no_proxy.SetAblation("gl");
  auto m2 = TinyModel(no_proxy);
  m2.eval();
  auto s2 = m2.DecodeShape(f);
  EXPECT_TRUE(torch::equal(s2.value, s2.proxy));
  EXPECT_EQ(s2.residual().abs().max().item<float>(), 0.f);

  auto global_only = c;
  global_only.SetAblation("nonlinear");
  auto m3 = TinyModel(global_only);
  EXPECT_LT(m3.CountParameters().shape_decoder, m2.CountParameters().shape_decoder);
  EXPECT_LT(m2.CountParameters().shape_decoder, model.CountParameters().shape_decoder);
  m3.eval();
  auto s3 = m3.DecodeShape(f);
  EXPECT_EQ(s3.value.sizes(), s.value.sizes());
  EXPECT_TRUE(torch::equal(s3.value, s3.proxy));
}

TEST(Networks, GradientsReachLatentsEncoderAndDecoders) {
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.train();
  torch::manual_seed(11);
  auto images = torch::rand({2, 3, c.image_size, c.image_size});
  auto e = model.Encode(images);
  // Keep the latents as graph leaves of their own so their gradients can be read.
  auto fs = e.f_shape.detach().requires_grad_(true);
  auto fa = e.f_albedo.detach().requires_grad_(true);
  auto s = model.DecodeShape(fs);
  auto a = model.DecodeAlbedo(fa);
  // Landmark alignment (eq. 7) with the encoder's M on the decoded true shape,
  // plus a proxy-albedo term and the residual (eq. 14): every branch contributes.
  const auto& t = model.face_template();
  auto flat = s.value.flatten(2);                                              // [B,3,UV]
  auto pix = t.topology.pixel_of_vertex.index_select(0, t.topology.landmarks68);  // [68]
  auto lm3 = flat.index_select(2, pix);                                        // [B,3,68]
  auto hom = torch::cat({lm3, torch::ones({2, 1, 68})}, 1);                    // [B,4,68]
  auto proj = torch::bmm(e.projection, hom);                                   // [B,2,68]
  auto loss = (proj - 100).pow(2).mean() * 1e-4 + (a.proxy - 0.5).pow(2).mean() + s.residual().abs().mean() +
              a.value.mean();
  loss.backward();
  EXPECT_GT(fs.grad().abs().sum().item<float>(), 0.f);
  EXPECT_GT(fa.grad().abs().sum().item<float>(), 0.f);
  auto nonzero = [](const std::vector<at::Tensor>& ps) {
    int with = 0;
    for (const auto& p : ps)
      if (p.grad().defined() && p.grad().abs().sum().item<float>() > 0) ++with;
    return with;
  };
  auto enc = model.encoder_parameters(), ds = model.shape_decoder_parameters(), da = model.albedo_decoder_parameters();
  EXPECT_GT(nonzero(enc), 0);  // through M
  EXPECT_EQ(nonzero(ds), static_cast<int>(ds.size())) << "every shape decoder weight gets a gradient";
  EXPECT_EQ(nonzero(da), static_cast<int>(da.size())) << "every albedo decoder weight gets a gradient";
}

TEST(Networks, GradientsFlowFromARenderedImageLoss) {
  // The paper's objective (eqs. 3-4, 15): render I^(S, A~) etc. with the
  // encoder's M and L and compare with the input image.
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.train();
  torch::manual_seed(13);
  auto images = torch::rand({2, 3, c.image_size, c.image_size});
  auto e = model.Encode(images);
  auto fs = e.f_shape.detach().requires_grad_(true);
  auto fa = e.f_albedo.detach().requires_grad_(true);
  auto s = model.DecodeShape(fs);
  auto a = model.DecodeAlbedo(fa);
  const auto& topo = model.face_template().topology;
  auto loss = torch::zeros({});
  for (auto [shape, albedo] : {std::pair{&s.proxy, &a.proxy}, std::pair{&s.proxy, &a.value}, std::pair{&s.value, &a.proxy}}) {
    auto r = render::Render(topo, render::VerticesFromUVMap(topo, *shape), render::VerticesFromUVMap(topo, *albedo),
                            e.projection, e.lighting, c.image_size, c.image_size);
    ASSERT_GT(r.mask.sum().item<float>(), 50.f) << "the face must cover part of the crop";
    // l_{2,1} over covered pixels (eq. 4).
    auto diff = ((r.image - images) * r.mask).pow(2).sum(1).add(1e-8).sqrt();
    loss = loss + diff.sum() / r.mask.sum();
  }
  loss.backward();
  EXPECT_GT(fs.grad().abs().sum().item<float>(), 0.f);
  EXPECT_GT(fa.grad().abs().sum().item<float>(), 0.f);
  auto count = [](const std::vector<at::Tensor>& ps) {
    int with = 0;
    for (const auto& p : ps)
      if (p.grad().defined() && p.grad().abs().sum().item<float>() > 0) ++with;
    return with;
  };
  auto enc = model.encoder_parameters(), ds = model.shape_decoder_parameters(), da = model.albedo_decoder_parameters();
  EXPECT_GT(count(enc), 0);  // through M and L
  EXPECT_EQ(count(ds), static_cast<int>(ds.size()));
  EXPECT_EQ(count(da), static_cast<int>(da.size()));
}

TEST(Networks, EvalModeIsDeterministicAndBatchIndependent) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.eval();
  EXPECT_FALSE(model.is_training());
  auto images = torch::rand({3, 3, c.image_size, c.image_size});
  auto e1 = model.Encode(images), e2 = model.Encode(images);
  EXPECT_TRUE(torch::equal(e1.f_shape, e2.f_shape));
  EXPECT_TRUE(torch::equal(e1.projection, e2.projection));
  auto s1 = model.DecodeShape(e1.f_shape), s2 = model.DecodeShape(e1.f_shape);
  EXPECT_TRUE(torch::equal(s1.value, s2.value));
  EXPECT_TRUE(torch::equal(s1.proxy, s2.proxy));
  auto single = model.DecodeShape(e1.f_shape.slice(0, 1, 2));
  EXPECT_TRUE(torch::allclose(single.value, s1.value.slice(0, 1, 2), 1e-5, 1e-5));
  // Train mode uses batch statistics: the same input gives batch-dependent output.
  model.train();
  auto t1 = model.DecodeShape(e1.f_shape);
  EXPECT_FALSE(torch::allclose(t1.value, s1.value, 1e-6, 1e-6));
}

// The inference levers (model/Inference.h) change speed, never the result: BatchNorm
// folded into the convolutions and channels-last activations give the plain eval
// decode within float rounding; Heads::kTrueOnly leaves the true maps as they are and
// skips the proxies; training mode ignores the levers.
TEST(Networks, InferenceLeversKeepTheDecodedMaps) {
  auto c = TinyConfig();
  auto model = TinyModel(c);
  // Running statistics away from (0, 1), so that folding them is not the identity.
  model.train();
  {
    torch::NoGradGuard g;
    torch::manual_seed(5);
    for (int i = 0; i < 8; ++i) {
      model.DecodeShape(3.0 * torch::randn({4, c.latent_shape}) + 1.0);
      model.DecodeAlbedo(3.0 * torch::randn({4, c.latent_albedo}) - 0.5);
    }
  }
  model.eval();
  torch::NoGradGuard g;
  auto fs = torch::randn({3, c.latent_shape}), fa = torch::randn({3, c.latent_albedo});
  EXPECT_TRUE(model.inference_options().fold_batchnorm);  // the defaults are the fast ones
  EXPECT_FALSE(model.inference_options().channels_last);
  model::InferenceOptions all;
  all.channels_last = true;
  model.SetInferenceOptions(all);
  auto fast_s = model.DecodeShape(fs), fast_a = model.DecodeAlbedo(fa);
  auto true_only = model.DecodeShape(fs, Heads::kTrueOnly);
  model.SetInferenceOptions({false, false, false});
  auto plain_s = model.DecodeShape(fs), plain_a = model.DecodeAlbedo(fa);
  auto both = model.DecodeShape(fs, Heads::kTrueOnly);  // lever off: the proxy runs anyway
  ASSERT_GT((plain_s.value - model.DecodeShape(torch::zeros_like(fs)).value).abs().max().item<float>(), 1e-4);
  for (auto [fast, plain] : {std::pair{&fast_s, &plain_s}, std::pair{&fast_a, &plain_a}}) {
    EXPECT_TRUE(fast->value.is_contiguous());
    EXPECT_TRUE(torch::allclose(fast->value, plain->value, 1e-4, 1e-5))
        << (fast->value - plain->value).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(fast->proxy, plain->proxy, 1e-4, 1e-5));
  }
  EXPECT_TRUE(torch::allclose(true_only.value, plain_s.value, 1e-4, 1e-5));
  EXPECT_FALSE(true_only.proxy.defined());
  EXPECT_TRUE(both.proxy.defined());
  // A copy carries the options; training mode decodes as it always did.
  auto copy = model.Clone();
  EXPECT_FALSE(copy.inference_options().fold_batchnorm);
  model.SetInferenceOptions({});
  model.train();
  auto train_fast = model.DecodeShape(fs);
  model.SetInferenceOptions({false, false, false});
  auto train_plain = model.DecodeShape(fs);
  EXPECT_TRUE(torch::equal(train_fast.value, train_plain.value));
}

TEST(Networks, EncoderDenormalisesProjectionAndLighting) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  auto model = TinyModel(c);
  model.eval();
  auto images = torch::rand({2, 3, c.image_size, c.image_size});
  auto base = model.Encode(images);
  auto n = model.normalisation();
  Normalisation shifted = n;
  shifted.m_mean = n.m_mean + 7;
  shifted.l_std = n.l_std * 2;
  model.SetNormalisation(shifted);
  auto e = model.Encode(images);
  EXPECT_TRUE(torch::allclose(e.projection, base.projection + 7, 1e-4, 1e-4));
  auto lnorm = (base.lighting - n.l_mean) / n.l_std;
  EXPECT_TRUE(torch::allclose(e.lighting, lnorm * n.l_std * 2 + n.l_mean, 1e-4, 1e-4));
  Normalisation bad = n;
  bad.l_mean = torch::zeros({9});
  EXPECT_THROW(model.SetNormalisation(bad), Error);
  EXPECT_THROW(model.Encode(torch::rand({1, 3, 32, 32})), Error);  // wrong image size
  EXPECT_THROW(model.DecodeShape(torch::rand({1, c.latent_shape + 1})), Error);
}

TEST(Networks, DefaultNormalisationCentresTheTemplateInTheCrop) {
  auto c = TinyConfig();
  auto t = testutil::TemplateFor(c);
  auto n = DefaultNormalisation(t, 224);
  auto M = n.m_mean.view({2, 4});
  auto mask = t.topology.mask;
  auto pts = t.mean_shape.flatten(1).index_select(1, torch::nonzero(mask.flatten()).flatten());  // [3,N]
  auto proj = torch::matmul(M, torch::cat({pts, torch::ones({1, pts.size(1)})}, 0));            // [2,N]
  auto xs = proj[0], ys = proj[1];
  EXPECT_NEAR(xs.max().item<float>() - xs.min().item<float>(), 0.75 * 224, 0.5);
  EXPECT_NEAR(0.5 * (xs.max() + xs.min()).item<float>(), 111.5, 0.5);
  EXPECT_NEAR(0.5 * (ys.max() + ys.min()).item<float>(), 111.5, 0.5);
  // Model y is up, image y is down: the top row of the UV map (forehead) projects above the chin.
  EXPECT_LT(M[1][1].item<float>(), 0.f);
}

TEST(Networks, CreateIsSeededAndLeavesTheGlobalRngAlone) {
  auto c = TinyConfig();
  torch::manual_seed(123);
  auto expected = torch::rand({4});
  torch::manual_seed(123);
  auto a = TinyModel(c, 7);
  auto after = torch::rand({4});
  EXPECT_TRUE(torch::equal(expected, after));
  auto b = TinyModel(c, 7);
  auto d = TinyModel(c, 8);
  EXPECT_EQ(a.WeightsHash(), b.WeightsHash());
  EXPECT_NE(a.WeightsHash(), d.WeightsHash());
}

TEST(Networks, ThreadHookReachesATen) {
  InstallTorchThreadHook();
  env::ConfigureThreads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(env::ConfigureThreads(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
}

}  // namespace
}  // namespace facebatch::model
