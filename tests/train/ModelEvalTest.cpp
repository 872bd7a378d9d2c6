// facebatch eval-model (lib/train/ModelEval.h): the two metrics against hand
// values and an exact case (ground truth fed as the reconstruction gives 0),
// the texture and shape protocols lowering their error from the encoder's
// initialisation, every model kind the trainer makes, outputs and bad input.
// The held-out corpus is a small `facebatch synth` corpus (300W-LP layout,
// 40 x 48 UV, seeded) indexed by the real reader; models are the tiny test
// configuration of tests/model/ModelTestUtil.h over the default template.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../model/ModelTestUtil.h"
#include "TestSupport.h"
#include "core/Error.h"
#include "io/Index.h"
#include "io/Manifest.h"
#include "model/FaceModel.h"
#include "render/Colour.h"
#include "render/Render.h"
#include "render/Template.h"
#include "synth/GroundTruth.h"
#include "synth/Synth.h"
#include "metrics/Metrics.h"
#include "train/ModelEval.h"

namespace facebatch::train {
namespace {

namespace fs = std::filesystem;
constexpr int kU = 40, kV = 48;

model::ModelConfig Config(const render::FaceTemplate& t, const std::string& kind = "gl-proxy") {
  auto c = model::testutil::TinyConfig(kU, kV);
  c.regions = t.topology.regions;
  if (kind == "linear") c.kind = model::ModelKind::kLinear;
  else c.SetAblation(kind);
  return c;
}

// A small synthetic held-out corpus (no occluders) + its manifest, and a tiny
// untrained model per kind, made once.
struct Fixture {
  testing::TempDir dir{"facebatch-modeleval"};
  render::FaceTemplate tmpl;
  std::string root, manifest;
  std::map<std::string, std::string> models;
};

Fixture& Shared() {
  // Destroyed at exit: the temporary directory goes with it.
  static std::unique_ptr<Fixture> f = [] {
    auto x = std::make_unique<Fixture>();
    x->tmpl = render::DefaultTemplate(kU, kV);
    synth::SynthOptions s;
    s.layout = "300w-lp";
    s.out = (x->dir / "heldout").string();
    s.count = 6;
    s.seed = 42;
    s.uv = std::to_string(kU) + "x" + std::to_string(kV);
    s.flip = false;
    s.occluders = 0;
    s.yaw_max = 45;
    s.threads = 2;
    s.progress = "none";
    synth::RunSynth(s);
    x->root = s.out;
    io::IndexOptions io;
    io.root = s.out;
    io.out = (x->dir / "heldout.jsonl").string();
    io.threads = 2;
    io.progress = "none";
    io::RunIndex(io);
    x->manifest = io.out;
    for (const std::string kind : {"linear", "nonlinear", "gl", "gl-proxy"}) {
      auto m = model::FaceModel::Create(Config(x->tmpl, kind), x->tmpl, 3);
      x->models[kind] = (x->dir / (kind + ".h5")).string();
      m.Save(x->models[kind]);
    }
    // A model whose shape decoder responds to f_S (an untrained nonlinear one
    // barely does): a PCA of the first 4 ground-truth maps (3 components).
    LinearModelOptions pca;
    pca.ground_truth = (fs::path(x->root) / synth::kGroundTruthFileName).string();
    pca.max_maps = 4;
    pca.rank_shape = pca.rank_albedo = 3;
    pca.out = x->models["pca"] = (x->dir / "pca.h5").string();
    pca.threads = 2;
    RunLinearModel(pca);
    return x;
  }();
  return *f;
}

ModelEvalOptions Options(const std::string& kind, const std::string& out) {
  ModelEvalOptions o;
  o.model = Shared().models.at(kind);
  o.manifest = Shared().manifest;
  o.out = out;
  o.steps = 20;
  o.batch = 3;
  o.threads = 2;
  o.progress = "none";
  o.texture_step_size = 0.05;
  o.shape_step_size = 0.05;
  o.tolerance = 0;  // every image runs every step
  return o;
}

TEST(ModelEvalMetrics, HandValuesAndTheExactCase) {
  const auto& topo = Shared().tmpl.topology;
  torch::manual_seed(1);
  // l2,1 by hand, on sRGB values: +0.1 on every channel of the visible pixels -> 0.1 * sqrt(3);
  // invisible pixels do not count; no visible pixel -> NaN. The inputs are linear.
  auto input = 0.8 * torch::rand({2, 3, 8, 8}, torch::TensorOptions().dtype(torch::kFloat));
  auto visible = torch::zeros({2, 1, 8, 8});
  visible.slice(2, 2, 5).fill_(1);
  auto rendered = input + 0.1 * visible - 0.7 * (1 - visible);
  visible[1].zero_();
  auto l21 = metrics::L21Error(render::SrgbToLinear(rendered), render::SrgbToLinear(input), visible);
  EXPECT_NEAR(l21[0].item<double>(), 0.1 * std::sqrt(3.0), 1e-6);
  EXPECT_TRUE(std::isnan(l21[1].item<double>()));

  // NME by hand: a rigid shift by d gives |d| / inter-ocular distance.
  auto gt = synth::ReadGroundTruth((fs::path(Shared().root) / synth::kGroundTruthFileName).string());
  auto gt_maps = gt.shape_uv.narrow(0, 0, 2);
  auto V = render::VerticesFromUVMap(topo, gt_maps);
  auto iod = InterOcularDistance(topo, V);
  auto lm = topo.landmarks68;
  for (int b = 0; b < 2; ++b) {
    auto a = V[b][lm[36].item<int64_t>()], c = V[b][lm[45].item<int64_t>()];
    EXPECT_NEAR(iod[b].item<double>(), (a - c).norm().item<double>(), 1e-5);
    EXPECT_GT(iod[b].item<double>(), 1.0);  // cm: a face, not a point
  }
  auto shifted = V + torch::tensor({0.3f, -0.4f, 0.0f});  // |d| = 0.5
  auto nme = metrics::ShapeNme(shifted, V, lm, metrics::ShapeAlignment::kNone);
  for (int b = 0; b < 2; ++b) EXPECT_NEAR(nme[b].item<double>(), 0.5 / iod[b].item<double>(), 1e-5);
  EXPECT_NEAR(metrics::ShapeNme(V, V, lm, metrics::ShapeAlignment::kNone).abs().max().item<double>(), 0.0, 1e-12);
  // Aligned: a shift (or a scaling) is a similarity and costs nothing.
  EXPECT_LT(metrics::ShapeNme(1.1 * shifted, V, lm, metrics::ShapeAlignment::kSimilarity).max().item<double>(), 1e-5);

  // Exact case: an image rendered from the ground-truth maps, M and L, and the
  // same maps fed as the reconstruction: l2,1 0 (and > 0 for other albedo).
  auto model = model::FaceModel::Load(Shared().models.at("gl-proxy"));
  auto M = model::DefaultNormalisation(Shared().tmpl, 64).m_mean.view({1, 2, 4}).expand({2, 2, 4}).contiguous();
  auto L = gt.L.narrow(0, 0, 2);
  auto albedo = gt.albedo_uv.narrow(0, 0, 2);
  auto r = render::Render(topo, V, render::VerticesFromUVMap(topo, albedo), M, L, 64, 64);
  auto exact = RenderL21(model, r.image, gt_maps, albedo, M, L);
  EXPECT_LT(exact.abs().max().item<double>(), 1e-6);
  auto other = RenderL21(model, r.image, gt_maps, albedo * 0.5, M, L);
  EXPECT_GT(other.min().item<double>(), 0.01);
}

TEST(ModelEvalProtocols, TextureAndShapeFitsLowerTheirErrorFromTheEncoderInit) {
  testing::TempDir out;
  auto s = RunModelEval(Options("gl-proxy", out.path().string()));
  ASSERT_EQ(s.images.size(), 6u);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.model_kind, "gl-proxy");
  EXPECT_NE(s.texture_albedo.find("true albedo"), std::string::npos);
  int better_texture = 0, better_shape = 0;
  for (const auto& e : s.images) {
    EXPECT_EQ(e.status, "ok") << e.id << " " << e.reason;
    for (double v : {e.texture_l21_init, e.texture_l21, e.shape_nme_init, e.shape_nme, e.encoder_shape_nme})
      EXPECT_TRUE(std::isfinite(v)) << e.id;
    EXPECT_TRUE(std::isfinite(e.yaw));
    EXPECT_LE(e.texture_l21, e.texture_l21_init + 1e-9) << e.id;  // best state kept
    EXPECT_NEAR(e.shape_nme_init, e.encoder_shape_nme, 1e-6);  // the same init
    EXPECT_NEAR(e.shape_nme_init_aligned, e.encoder_shape_nme_aligned, 1e-6);
    // The mean face is one shape: its aligned NME is finite, its spread is 0 (below).
    EXPECT_TRUE(std::isfinite(e.mean_face_shape_nme_aligned)) << e.id;
    EXPECT_LE(e.encoder_shape_nme_aligned, e.encoder_shape_nme + 1e-9) << e.id;  // alignment never hurts
    better_texture += e.texture_l21 < 0.7 * e.texture_l21_init;
    EXPECT_EQ(e.texture_iterations, 20);
    EXPECT_EQ(e.shape_iterations, 20);
  }
  EXPECT_GE(better_texture, 5);
  EXPECT_LT(s.stats.at("texture_l21").mean, 0.7 * s.stats.at("texture_l21_init").mean);
  EXPECT_EQ(s.stats.at("shape_nme").count, 6);
  EXPECT_TRUE(std::isfinite(s.encoder_spread.rms));
  EXPECT_GE(s.encoder_spread.rms, 0.0);

  // The shape protocol with a decoder that responds to f_S (PCA of 4 of the 6
  // ground-truth shapes): the vertex error falls well below the encoder's init.
  testing::TempDir out2;
  auto o = Options("pca", out2.path().string());
  o.protocol = "shape";
  o.steps = 30;
  o.shape_step_size = 0.2;
  auto p = RunModelEval(o);
  for (const auto& e : p.images) {
    better_shape += e.shape_nme_aligned < 0.8 * e.shape_nme_init_aligned;
  }
  EXPECT_GE(better_shape, 4);  // aligned, the encoder's start is already closer than without alignment
  EXPECT_LT(p.stats.at("shape_nme_aligned").mean, 0.7 * p.stats.at("shape_nme_init_aligned").mean);
  EXPECT_EQ(p.stats.at("texture_l21").count, 0);

  // Outputs: one CSV row per image, the JSON summary agrees with the struct.
  std::ifstream csv(s.csv_path);
  std::string line;
  int rows = -1;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 6);
  auto j = nlohmann::json::parse(testing::ReadFile(s.json_path));
  EXPECT_EQ(j.at("format"), kModelEvalFormat);
  EXPECT_EQ(j.at("version"), kModelEvalVersion);
  EXPECT_NEAR(j.at("metrics").at("texture_l21").at("mean").get<double>(), s.stats.at("texture_l21").mean, 1e-12);
  EXPECT_NE(s.Table().find("texture l2,1"), std::string::npos);
}

TEST(ModelEvalProtocols, EveryModelKindTheTrainerMakes) {
  for (const std::string kind : {"linear", "nonlinear", "gl"}) {
    testing::TempDir out;
    auto o = Options(kind, out.path().string());
    o.steps = 3;
    o.max_images = 2;
    auto s = RunModelEval(o);
    EXPECT_EQ(s.model_kind, kind);
    ASSERT_EQ(s.images.size(), 2u) << kind;
    for (const auto& e : s.images)
      for (double v : {e.texture_l21_init, e.texture_l21, e.shape_nme_init, e.shape_nme})
        EXPECT_TRUE(std::isfinite(v)) << kind << " " << e.id;
    EXPECT_EQ(s.texture_albedo.find("proxy head"), std::string::npos) << kind;
  }
}

TEST(ModelEvalRun, ProtocolSubsetsBadItemsAndBadInput) {
  auto& f = Shared();
  testing::TempDir out;
  // Encoder only: no optimisation columns; an unreadable image is recorded
  // as failed and the run goes on.
  auto manifest = io::ReadManifest(f.manifest);
  manifest.items[1].image = "missing/nowhere.jpg";
  const auto bad_manifest = (out / "bad.jsonl").string();
  io::WriteManifest(bad_manifest, manifest);
  auto o = Options("gl-proxy", (out / "enc").string());
  o.manifest = bad_manifest;
  o.protocol = "encoder";
  auto s = RunModelEval(o);
  EXPECT_EQ(s.failed, 1);
  EXPECT_EQ(s.images[1].status, "failed");
  EXPECT_NE(s.images[1].reason.find("nowhere.jpg"), std::string::npos) << s.images[1].reason;
  EXPECT_EQ(s.stats.at("texture_l21").count, 0);
  EXPECT_EQ(s.stats.at("encoder_shape_nme").count, 5);

  // Options.
  EXPECT_EQ(ParseEvalProtocols("all"), unsigned(kEvalAll));
  EXPECT_EQ(ParseEvalProtocols("texture,shape"), unsigned(kEvalTexture | kEvalShape));
  EXPECT_THROW(ParseEvalProtocols("textures"), UsageError);
  auto bad = Options("gl-proxy", (out / "x").string());
  bad.batch = 0;
  EXPECT_THROW(bad.Check(), UsageError);
  bad = Options("gl-proxy", (out / "x").string());
  bad.method = "lbfgs";
  EXPECT_THROW(bad.Check(), UsageError);

  // A ground-truth file of another UV size, and a missing one, name the file.
  bad = Options("gl-proxy", (out / "x").string());
  bad.ground_truth = (out / "none.h5").string();
  try {
    RunModelEval(bad);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("none.h5"), std::string::npos) << e.what();
  }
  synth::GroundTruth gt;
  gt.corpus = "300w-lp";
  gt.uv_rows = 16, gt.uv_cols = 20;
  gt.ids = {"x"};
  gt.shape_uv = torch::zeros({1, 3, 16, 20}), gt.albedo_uv = torch::zeros({1, 3, 16, 20});
  gt.M = torch::zeros({1, 2, 4}), gt.L = torch::zeros({1, 27}), gt.landmarks = torch::zeros({1, 68, 2});
  gt.pose = torch::zeros({1, 3}), gt.visible = torch::ones({1, 68}, torch::kUInt8);
  gt.template_mask = torch::ones({16, 20}, torch::kUInt8);
  bad.ground_truth = (out / "small.h5").string();
  synth::WriteGroundTruth(bad.ground_truth, gt);
  EXPECT_THROW(RunModelEval(bad), InputError);
}

TEST(ModelEvalLinear, PcaOfTheGroundTruthMaps) {
  auto& f = Shared();
  testing::TempDir out;
  LinearModelOptions o;
  o.ground_truth = (fs::path(f.root) / synth::kGroundTruthFileName).string();
  o.rank_shape = 3;
  o.rank_albedo = 9;  // capped at maps - 1 = 5
  o.max_maps = 0;
  o.out = (out / "pca.h5").string();
  o.threads = 2;
  auto s = RunLinearModel(o);
  EXPECT_EQ(s.maps, 6);
  EXPECT_EQ(s.rank_shape, 3);
  EXPECT_EQ(s.rank_albedo, 5);
  EXPECT_GT(s.explained_shape, 0.3);
  EXPECT_LE(s.explained_shape, 1.0 + 1e-9);
  EXPECT_NEAR(s.explained_albedo, 1.0, 1e-6);  // 6 maps: 5 components span the centred data
  auto m = model::FaceModel::Load(o.out);
  EXPECT_EQ(m.config().kind, model::ModelKind::kLinear);
  EXPECT_EQ(m.config().uv_rows, kU);
  auto gt = synth::ReadGroundTruth(o.ground_truth);
  torch::NoGradGuard g;
  // f = 0 decodes the mean map; the full-rank albedo model reproduces every map exactly
  // (least squares through the basis).
  auto mean_shape = m.DecodeShape(torch::zeros({1, 3})).value[0];
  EXPECT_LT((mean_shape - gt.shape_uv.mean(0)).abs().max().item<double>(), 1e-4);
  auto decode = [&](const at::Tensor& f_albedo) { return m.DecodeAlbedo(f_albedo).value.flatten(1); };
  auto mean_albedo = decode(torch::zeros({1, 5}));
  std::vector<at::Tensor> columns;
  for (int k = 0; k < 5; ++k) columns.push_back(decode(torch::eye(5)[k].unsqueeze(0))[0] - mean_albedo[0]);
  const at::Tensor basis = torch::stack(columns);  // [5, D]
  auto target = gt.albedo_uv[4].flatten().unsqueeze(0) - mean_albedo;  // [1, D]
  auto coef = std::get<0>(torch::linalg_lstsq(basis.t().to(torch::kDouble), target.t().to(torch::kDouble)));
  auto recon = torch::matmul(basis.t().to(torch::kDouble), coef).t();
  EXPECT_LT((recon - target.to(torch::kDouble)).abs().max().item<double>(), 1e-3);
  o.ground_truth = (out / "missing.h5").string();
  EXPECT_THROW(RunLinearModel(o), InputError);
}

}  // namespace
}  // namespace facebatch::train
