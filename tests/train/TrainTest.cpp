// facebatch train: data pipeline (crops, ground truth, deterministic order),
// the objective of both phases, short runs that lower the losses, exact
// resume, validation and the CSV/PNG outputs. A tiny synthetic corpus is
// rendered here with lib/render from the default template (seeded), with a
// ground-truth file written by hand to the contract of schemas/ground_truth.md.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <fstream>
#include <opencv2/imgcodecs.hpp>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "core/Error.h"
#include "fit/Losses.h"
#include "io/Crop.h"
#include "io/Hdf5.h"
#include "io/Manifest.h"
#include "model/FaceModel.h"
#include "render/Render.h"
#include "render/Template.h"
#include "metrics/Metrics.h"
#include "train/Data.h"
#include "train/LatentTargets.h"
#include "train/Trainer.h"

namespace facebatch::train {
namespace {

namespace fs = std::filesystem;
constexpr int kU = 40, kV = 48, kImage = 64, kOriginal = 96, kItems = 10;

model::ModelConfig TinyConfig(const render::FaceTemplate& t) {
  auto c = model::testutil::TinyConfig(kU, kV);
  static_assert(kImage == 64, "TinyConfig's image size");
  c.regions = t.topology.regions;
  return c;
}

std::vector<float> ToVector(const at::Tensor& t) {
  auto c = t.contiguous().to(torch::kFloat);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// A rendered synthetic corpus: images (96 x 96, face not centred, gradient
// background), a manifest of 68 projected landmarks, the ground-truth file.
struct Corpus {
  testing::TempDir dir;
  std::string manifest, model;
  render::FaceTemplate tmpl;
  at::Tensor gt_M, gt_landmarks;  // original image coordinates
};

Corpus& SharedCorpus() {
  static Corpus* corpus = [] {
    auto* c = new Corpus;
    c->tmpl = render::DefaultTemplate(kU, kV);
    const auto& topo = c->tmpl.topology;
    torch::manual_seed(11);
    const auto norm = model::DefaultNormalisation(c->tmpl, kOriginal);
    std::vector<at::Tensor> shapes, albedos, Ms, Ls, lms;
    io::Manifest manifest;
    manifest.header.corpus = "folder";
    manifest.header.root = c->dir.path().string();
    for (int i = 0; i < kItems; ++i) {
      auto shape = c->tmpl.mean_shape * (1 + 0.08 * torch::randn({3, 1, 1}));
      auto albedo = (c->tmpl.mean_albedo * (0.7 + 0.6 * torch::rand({3, 1, 1}))).clamp(0, 1);
      auto M = norm.m_mean.view({2, 4}).clone();
      const double s = 0.9 + 0.2 * torch::rand({1}).item<double>();
      M.slice(1, 0, 3) *= s;
      M.select(1, 3) += torch::randn({2}) * 4;
      auto L = norm.l_mean + 0.3 * torch::randn({27});
      auto V = render::VerticesFromUVMap(topo, shape.unsqueeze(0));
      auto r = render::Render(topo, V, render::VerticesFromUVMap(topo, albedo.unsqueeze(0)), M.unsqueeze(0),
                              L.unsqueeze(0), kOriginal, kOriginal);
      auto xs = torch::linspace(0, 1, kOriginal);
      auto bg = torch::stack({xs.view({1, -1}).expand({kOriginal, kOriginal}), 0.3 * torch::ones({kOriginal, kOriginal}),
                              xs.view({-1, 1}).expand({kOriginal, kOriginal})})
                    .unsqueeze(0);
      auto img = (r.image * r.mask + bg * (1 - r.mask)).clamp(0, 1)[0];  // [3, H, W] RGB
      auto bgr = (img.flip(0).permute({1, 2, 0}) * 255).round().to(torch::kUInt8).contiguous();
      cv::Mat mat(kOriginal, kOriginal, CV_8UC3, bgr.data_ptr());
      const std::string name = "img_" + std::to_string(i) + ".png";
      cv::imwrite((c->dir.path() / name).string(), mat);
      auto lm = fit::ProjectPoints(M.unsqueeze(0), V.index_select(1, topo.landmarks68))[0];  // [68, 2]
      io::Item item;
      item.id = "folder/img_" + std::to_string(i);
      item.image = name;
      item.width = item.height = kOriginal;
      item.corpus = "folder";
      item.landmarks.convention = io::LandmarkConvention::kIbug68;
      for (int k = 0; k < 68; ++k) item.landmarks.points.push_back({lm[k][0].item<double>(), lm[k][1].item<double>()});
      manifest.items.push_back(item);
      shapes.push_back(shape), albedos.push_back(albedo), Ms.push_back(M), Ls.push_back(L), lms.push_back(lm);
    }
    c->manifest = (c->dir.path() / "manifest.jsonl").string();
    io::WriteManifest(c->manifest, manifest);
    // Ground truth through the project's one writer (schemas/ground_truth.md).
    c->gt_M = torch::stack(Ms), c->gt_landmarks = torch::stack(lms);
    synth::GroundTruth gt;
    gt.corpus = "folder";
    gt.generator = "TrainTest";
    gt.seed = 11;
    gt.uv_rows = kU, gt.uv_cols = kV;
    for (const auto& item : manifest.items) gt.ids.push_back(item.id);
    const int64_t n = kItems;
    gt.shape_uv = torch::stack(shapes), gt.albedo_uv = torch::stack(albedos);
    gt.M = c->gt_M, gt.L = torch::stack(Ls), gt.landmarks = c->gt_landmarks;
    gt.pose = torch::zeros({n, 3}), gt.visible = torch::ones({n, 68}, torch::kUInt8);
    gt.template_mask = c->tmpl.topology.mask.to(torch::kUInt8);
    synth::WriteGroundTruth((c->dir.path() / kGroundTruthFileName).string(), gt);
    // The tiny untrained model every run starts from.
    auto m = model::FaceModel::Create(TinyConfig(c->tmpl), c->tmpl, 5);
    c->model = (c->dir.path() / "init.h5").string();
    m.Save(c->model);
    return c;
  }();
  return *corpus;
}

TrainOptions BaseOptions(const std::string& out) {
  auto& c = SharedCorpus();
  TrainOptions o;
  o.manifest = c.manifest;
  o.model_in = c.model;
  o.out = out;
  o.batch = 4;
  o.lr = 0.005;
  o.lr_schedule = "constant";
  o.threads = 2;
  o.loader_threads = 2;
  o.val_fraction = 0.2;
  o.val_every = 4;
  o.checkpoint_every = 4;
  o.log_every = 100;
  o.seed = 3;
  return o;
}

struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  double Get(size_t row, const std::string& col) const {
    auto it = std::find(header.begin(), header.end(), col);
    EXPECT_NE(it, header.end()) << col;
    const auto& v = rows.at(row).at(static_cast<size_t>(it - header.begin()));
    return v.empty() ? std::nan("") : std::stod(v);
  }
  // Mean of a column over rows [a, b).
  double Mean(size_t a, size_t b, const std::string& col) const {
    double s = 0;
    for (size_t r = a; r < b; ++r) s += Get(r, col);
    return s / static_cast<double>(b - a);
  }
};

Csv ReadCsv(const fs::path& path) {
  Csv csv;
  std::ifstream in(path);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    (first ? csv.header : (csv.rows.emplace_back(), csv.rows.back())) = cells;
    first = false;
  }
  return csv;
}

TEST(TrainData, GroundTruthIsReadAndTransformedIntoTheCrop) {
  auto& c = SharedCorpus();
  auto gt = synth::ReadGroundTruth((c.dir.path() / kGroundTruthFileName).string());
  ASSERT_EQ(gt.ids.size(), static_cast<size_t>(kItems));
  EXPECT_EQ(gt.Find("folder/img_3"), 3);
  EXPECT_EQ(gt.Find("nope"), -1);
  EXPECT_TRUE(torch::equal(gt.M, c.gt_M));
  // Projecting the GT shape's landmark vertices with the crop-space M gives the crop landmarks.
  auto manifest = io::ReadManifest(c.manifest);
  Dataset data(manifest, manifest.items, kU, kV, true, kImage);
  ASSERT_TRUE(data.has_ground_truth());
  for (int64_t i : {0, 7}) {
    Sample s = data.Load(i);
    ASSERT_TRUE(s.has_ground_truth);
    EXPECT_EQ(s.image.sizes(), torch::IntArrayRef({3, kImage, kImage}));
    EXPECT_GE(s.image.min().item<float>(), 0.f);
    EXPECT_LE(s.image.max().item<float>(), 1.f);
    auto V = render::VerticesFromUVMap(c.tmpl.topology, s.shape_uv.unsqueeze(0));
    auto p = fit::ProjectPoints(s.M.unsqueeze(0), V.index_select(1, c.tmpl.topology.landmarks68))[0];
    EXPECT_LT((p - s.landmarks).abs().max().item<double>(), 1e-3);
    // The crop shows the face: the face pixels under the landmarks differ from the background.
    EXPECT_LT((s.landmarks - kImage / 2.0).abs().max().item<double>(), kImage / 2.0);
  }
}

TEST(TrainData, AugmentedCropsCarryTheirTargetsAlong) {
  // --augment.*: the crop moves, turns and scales, and M and the landmarks follow it
  // exactly; a channel gain goes to L; the same position draws the same; no position, no
  // augmentation.
  auto& c = SharedCorpus();
  auto manifest = io::ReadManifest(c.manifest);
  Dataset plain(manifest, manifest.items, kU, kV, true, kImage), data(manifest, manifest.items, kU, kV, true, kImage);
  Augmentation a;
  a.shift = 0.05, a.scale = 0.1, a.rotation = 10, a.gain = 0.2;
  data.SetAugmentation(a, 7);
  for (int64_t i : {0, 7}) {
    Sample p = plain.Load(i), s = data.Load(i, 100 + i), again = data.Load(i, 100 + i), other = data.Load(i, 200 + i);
    EXPECT_TRUE(torch::equal(s.image, again.image));
    EXPECT_FALSE(torch::equal(s.image, other.image));
    EXPECT_FALSE(torch::equal(s.image, p.image));
    EXPECT_TRUE(torch::equal(data.Load(i).image, p.image));
    auto V = render::VerticesFromUVMap(c.tmpl.topology, s.shape_uv.unsqueeze(0));
    auto projected = fit::ProjectPoints(s.M.unsqueeze(0), V.index_select(1, c.tmpl.topology.landmarks68))[0];
    EXPECT_LT((projected - s.landmarks).abs().max().item<double>(), 1e-3);
    EXPECT_GT((s.landmarks - p.landmarks).abs().max().item<double>(), 0.1);
    EXPECT_TRUE(torch::equal(s.shape_uv, p.shape_uv));
    // L's channels scale with the image's gains: the ratio is one gain per 9 coefficients.
    auto ratio = (s.L / p.L).view({3, 9});
    EXPECT_LT((ratio - ratio.mean(1, true)).abs().max().item<double>(), 1e-4);
    EXPECT_LE((ratio.mean(1) - 1).abs().max().item<double>(), 0.2 + 1e-6);
    EXPECT_GT((ratio.mean(1) - 1).abs().max().item<double>(), 1e-4);
  }
  Augmentation bad;
  bad.rotation = 120;
  EXPECT_THROW(data.SetAugmentation(bad, 1), UsageError);
}

TEST(TrainData, GroundTruthReaderRejectsForeignAndNewerFiles) {
  testing::TempDir dir;
  const auto path = (dir.path() / "gt.h5").string();
  {
    auto f = io::hdf5::File::Create(path);
    f.root().SetAttribute("format", std::string("something-else"));
    f.Close();
  }
  EXPECT_THROW(synth::ReadGroundTruth(path), InputError);
  {
    auto f = io::hdf5::File::Create(path);
    f.root().SetAttribute("format", std::string(synth::kGroundTruthFormat));
    f.root().SetAttribute("version", int64_t{99});
    f.Close();
  }
  try {
    synth::ReadGroundTruth(path);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
}

TEST(TrainData, OrderIsASeededPermutationPerEpochAndLoadingIsParallelAndOrdered) {
  auto a = EpochPermutation(10, 1, 0), b = EpochPermutation(10, 1, 0), c = EpochPermutation(10, 2, 0),
       d = EpochPermutation(10, 1, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);

  auto& corpus = SharedCorpus();
  auto manifest = io::ReadManifest(corpus.manifest);
  Dataset data(manifest, manifest.items, kU, kV, true, kImage);
  BatchStream s1(data, 3, 7, 0, 3, 2), s2(data, 3, 7, 2, 1, 1);
  std::vector<std::vector<std::string>> ids;
  for (int step = 0; step < 5; ++step) {
    Batch b = s1.Next();
    EXPECT_EQ(b.step, step);
    EXPECT_EQ(b.images.sizes(), torch::IntArrayRef({3, 3, kImage, kImage}));
    ids.push_back(b.ids);
    std::vector<std::string> expect;
    for (int64_t i : s1.Indices(step)) expect.push_back(data.item(i).id);
    EXPECT_EQ(b.ids, expect);
  }
  // A stream started at step 2 (a resume) continues with the same batches.
  EXPECT_EQ(s2.Next().ids, ids[2]);
  EXPECT_EQ(s2.Next().ids, ids[3]);
  // Every item once in the first epoch (positions 0..9).
  std::set<std::string> first_epoch;
  for (int p = 0; p < 9; ++p) first_epoch.insert(ids[static_cast<size_t>(p / 3)][static_cast<size_t>(p % 3)]);
  EXPECT_EQ(first_epoch.size(), 9u);
}

TEST(TrainObjective, TermsOfEachPhaseAndAblation) {
  auto& c = SharedCorpus();
  auto manifest = io::ReadManifest(c.manifest);
  Dataset data(manifest, manifest.items, kU, kV, true, kImage);
  Batch batch = Collate({data.Load(0), data.Load(1)}, 0);
  TrainOptions o = BaseOptions("unused");
  auto m = model::FaceModel::Load(c.model);
  auto pre = ComputeObjective(m, batch, Phase::kPretrain, o);
  for (const char* n : {"landmark", "gt_projection", "gt_lighting", "gt_shape", "gt_albedo"})
    EXPECT_NE(pre.Find(n), nullptr) << n;
  EXPECT_EQ(pre.Find("rec_proxy-proxy"), nullptr);
  auto full = ComputeObjective(m, batch, Phase::kFull, o, nullptr, true);
  for (const char* n : {"landmark", "rec_proxy-proxy", "rec_proxy-true", "rec_true-proxy", "albedo_symmetry",
                        "albedo_constancy", "shape_smoothness", "residual_shape", "residual_albedo",
                        "residual_symmetry", "metric_l21", "metric_shape_l1"})
    EXPECT_NE(full.Find(n), nullptr) << n;
  EXPECT_EQ(full.Find("rec_true-true"), nullptr);  // eq. 15: no loss on I(S, A)
  EXPECT_EQ(full.Find("metric_l21")->weight, 0.0);
  EXPECT_EQ(full.Find("gt_shape")->weight, 0.0);  // a metric only in phase 2
  auto mean = full.Mean();
  mean.backward();
  EXPECT_TRUE(std::isfinite(mean.item<double>()));

  // Without proxies (ablation "gl"): I(S, A) and no residual terms.
  auto config = TinyConfig(c.tmpl);
  config.SetAblation("gl");
  auto gl = model::FaceModel::Create(config, c.tmpl, 5);
  auto t = ComputeObjective(gl, batch, Phase::kFull, o);
  EXPECT_NE(t.Find("rec_true-true"), nullptr);
  EXPECT_EQ(t.Find("rec_proxy-proxy"), nullptr);
  EXPECT_EQ(t.Find("residual_shape"), nullptr);
  EXPECT_NE(t.Find("albedo_symmetry"), nullptr);

  // Linear kind: the same reconstruction; only the encoder has parameters.
  config = TinyConfig(c.tmpl);
  config.kind = model::ModelKind::kLinear;
  auto lin = model::FaceModel::Create(config, c.tmpl, 5);
  EXPECT_EQ(lin.parameters().size(), lin.encoder_parameters().size());
  auto tl = ComputeObjective(lin, batch, Phase::kFull, o);
  EXPECT_NE(tl.Find("rec_true-true"), nullptr);
  EXPECT_EQ(tl.Find("residual_albedo"), nullptr);
}

// Every item of the shared corpus in one batch (targets as the trainer's Dataset gives them).
Batch AllItems() {
  auto manifest = io::ReadManifest(SharedCorpus().manifest);
  Dataset data(manifest, manifest.items, kU, kV, true, kImage);
  std::vector<Sample> all;
  for (int64_t i = 0; i < data.size(); ++i) all.push_back(data.Load(i));
  return Collate(all, 0);
}

TEST(TrainRun, PretrainingLowersTheSupervisedLosses) {
  testing::TempDir out;
  TrainOptions o = BaseOptions(out.path().string());
  o.steps = o.pretrain_steps = 40;
  o.lr = 0.01;
  o.val_every = 20;
  // The shape term (cm, ~0.7) gets a larger weight so that it has a fair share of the
  // shared encoder's gradient beside the albedo term (x10); with x1 a short run may not
  // move it at all (measured: 0.7627 -> 0.7627).
  o.pretrain.shape = 4;
  auto s = RunTrain(o);
  auto csv = ReadCsv(s.csv_path);
  ASSERT_EQ(csv.rows.size(), 40u);
  EXPECT_EQ(csv.rows[0][1], "pretrain");
  EXPECT_LT(csv.Mean(36, 40, "total"), 0.8 * csv.Mean(0, 4, "total"));
  auto val = ReadCsv(s.val_csv_path);
  ASSERT_EQ(val.rows.size(), 2u);  // step 20 and the end
  EXPECT_GT(val.Get(1, "metric_l21"), 0);
  EXPECT_GT(val.Get(1, "gt_shape"), 0);
  // Every supervised term is lower on all the training items (one fixed batch,
  // batch statistics as in training) than with the initial model (whose M/L
  // statistics are set the same way, so only the training differs).
  auto m = model::FaceModel::Load(s.model_path);
  auto& c = SharedCorpus();
  Batch batch = AllItems();
  auto before_model = model::FaceModel::Load(c.model);
  before_model.SetNormalisation(m.normalisation());
  torch::NoGradGuard no_grad;
  before_model.train(), m.train();
  auto before = ComputeObjective(before_model, batch, Phase::kPretrain, o).Means();
  auto after = ComputeObjective(m, batch, Phase::kPretrain, o).Means();
  for (const char* n : {"total", "gt_projection", "gt_lighting", "gt_shape", "gt_albedo"})
    EXPECT_LT(after[n], 0.9 * before[n]) << n;
  // The trained model file has provenance and the data's M/L statistics.
  EXPECT_EQ(m.provenance().training_steps, 40);
  EXPECT_NE(m.provenance().training_data.find("synthetic ground truth"), std::string::npos);
  EXPECT_FALSE(m.provenance().parent_hash.empty());
  auto init = model::FaceModel::Load(SharedCorpus().model);
  EXPECT_FALSE(torch::allclose(m.normalisation().m_mean, init.normalisation().m_mean));
  cv::Mat plot = cv::imread(s.plot_path);
  EXPECT_FALSE(plot.empty());
}

TEST(TrainRun, PretrainedShapesFollowTheFace) {
  // Issue 14: the collapse this would have caught. The first default model decoded the
  // same shape for every face (spread ratio ~0.003: 0.0015 cm against the truth's 0.5 cm).
  // After a short pre-training with latent targets, the decoded shapes must vary with
  // the input as the ground truth does.
  testing::TempDir out;
  TrainOptions o = BaseOptions(out.path().string());
  o.steps = o.pretrain_steps = 60;
  o.val_every = 0;
  auto s = RunTrain(o);
  auto m = model::FaceModel::Load(s.model_path);
  m.eval();
  Batch batch = AllItems();
  torch::NoGradGuard no_grad;
  const auto& topo = m.face_template().topology;
  auto vertices = [&](const at::Tensor& maps) { return render::VerticesFromUVMap(topo, maps); };
  const auto G = vertices(batch.shape_uv);
  const auto mean_face = vertices(m.face_template().mean_shape.unsqueeze(0))[0];
  // The decoder morphs: the target codes decode to shapes as varied as the truth.
  auto targets = LatentTargets::Load((out.path() / "latent_targets_shape.pt").string());
  auto decoded_targets = m.DecodeShape(targets.Codes(batch.shape_uv)).value;
  const auto decoder = metrics::ShapeSpreadRatio(vertices(decoded_targets), G, mean_face);
  EXPECT_GT(decoder.rms, 0.5) << decoder.rms;
  // The encoder's shapes follow the face (on these training images: what matters here is
  // that they are not one shape).
  auto enc = m.Encode(batch.images);
  const auto encoder = metrics::ShapeSpreadRatio(vertices(m.DecodeShape(enc.f_shape).value), G, mean_face);
  EXPECT_GT(encoder.rms, 0.2) << encoder.rms;
  // The mean face itself has no spread.
  const auto mean_only = metrics::ShapeSpreadRatio(mean_face.unsqueeze(0).expand_as(G), G, mean_face);
  EXPECT_NEAR(mean_only.rms, 0.0, 1e-6);
}

// A joint pre-training of 60 steps, run once for the part stages' tests: long enough for
// the decoders to learn code -> map (checked by those stages).
struct JointRun {
  testing::TempDir dir;
  TrainSummary summary;
};
const JointRun& SharedJointPretraining() {
  static JointRun* run = [] {
    auto* r = new JointRun;
    TrainOptions o = BaseOptions(r->dir.path().string());
    o.steps = o.pretrain_steps = 60;
    o.val_every = 0;
    r->summary = RunTrain(o);
    return r;
  }();
  return *run;
}

TEST(TrainRun, EncoderStageLearnsTheCodesAndLeavesTheDecodersAlone) {
  // --train-parts encoder after a joint pre-training (issue 14): the encoder regresses the
  // first run's latent targets (--latent-targets), the decoders and their BatchNorm
  // statistics do not change, and the decoders are not run in its pre-training.
  const auto& joint = SharedJointPretraining();
  const auto& first = joint.dir;
  const auto& s1 = joint.summary;
  testing::TempDir second;
  TrainOptions e = BaseOptions(second.path().string());
  e.model_in = s1.model_path;
  e.train_parts = "encoder";
  e.latent_targets = first.path().string();
  e.set_normalisation = false;
  e.steps = e.pretrain_steps = 40;
  e.lr = 0.01;
  e.val_every = 20;
  auto s2 = RunTrain(e);
  auto before = model::FaceModel::Load(s1.model_path), after = model::FaceModel::Load(s2.model_path);
  // The same targets as the first run's.
  auto t1 = LatentTargets::Load((first.path() / "latent_targets_shape.pt").string());
  auto t2 = LatentTargets::Load((second.path() / "latent_targets_shape.pt").string());
  EXPECT_TRUE(torch::equal(t1.basis, t2.basis));
  // Decoders: the same weights and statistics, so the same maps for any code.
  before.eval(), after.eval();
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  const auto f_S = torch::randn({3, before.config().latent_shape}), f_A = torch::randn({3, before.config().latent_albedo});
  EXPECT_TRUE(torch::equal(before.DecodeShape(f_S).value, after.DecodeShape(f_S).value));
  EXPECT_TRUE(torch::equal(before.DecodeAlbedo(f_A).proxy, after.DecodeAlbedo(f_A).proxy));
  auto eb = before.encoder_parameters(), ea = after.encoder_parameters();
  double moved = 0;
  for (size_t i = 0; i < eb.size(); ++i) moved += (ea[i] - eb[i]).abs().sum().item<double>();
  EXPECT_GT(moved, 0);
  // The encoder learns the codes; the decoder-map terms are not computed.
  auto csv = ReadCsv(s2.csv_path);
  ASSERT_EQ(csv.rows.size(), 40u);
  EXPECT_LT(csv.Mean(36, 40, "gt_latent_shape"), 0.8 * csv.Mean(0, 4, "gt_latent_shape"));
  EXPECT_TRUE(std::isnan(csv.Get(0, "gt_shape")));
  EXPECT_GT(csv.Get(0, "landmark"), 0);
  // Validation decodes the encoder's own latents.
  auto val = ReadCsv(s2.val_csv_path);
  ASSERT_EQ(val.rows.size(), 2u);
  EXPECT_GT(val.Get(1, "metric_shape_l1"), 0);
  // Bad values are refused by name.
  TrainOptions bad = e;
  bad.train_parts = "heads";
  EXPECT_THROW(bad.Check(), UsageError);
  bad = e;
  bad.out = (second.path() / "again").string();
  bad.latent_targets = (second.path() / "nowhere").string();
  EXPECT_THROW(RunTrain(bad), InputError);
}

TEST(TrainRun, DecoderStageLearnsTheMapsAndLeavesTheEncoderAlone) {
  // --train-parts decoders (issue 14): the decoders go on learning the first run's latent
  // targets -> ground-truth maps; the encoder and its BatchNorm statistics do not change,
  // and the encoder is not run in its steps.
  const auto& joint = SharedJointPretraining();
  testing::TempDir second;
  TrainOptions d = BaseOptions(second.path().string());
  d.model_in = joint.summary.model_path;
  d.train_parts = "decoders";
  d.latent_targets = joint.dir.path().string();
  d.set_normalisation = false;
  d.steps = d.pretrain_steps = 40;
  d.val_every = 20;
  auto s2 = RunTrain(d);
  auto before = model::FaceModel::Load(joint.summary.model_path), after = model::FaceModel::Load(s2.model_path);
  before.eval(), after.eval();
  torch::NoGradGuard no_grad;
  // The encoder: the same weights and statistics, so the same latents for any image.
  torch::manual_seed(4);
  const auto images = torch::rand({2, 3, before.config().image_size, before.config().image_size});
  const auto eb = before.Encode(images), ea = after.Encode(images);
  EXPECT_TRUE(torch::equal(eb.f_shape, ea.f_shape));
  EXPECT_TRUE(torch::equal(eb.f_albedo, ea.f_albedo));
  EXPECT_TRUE(torch::equal(eb.projection, ea.projection));
  // The decoders moved, and the map terms fell; the encoder's terms are not computed.
  const auto f_A = torch::randn({3, before.config().latent_albedo});
  EXPECT_GT((before.DecodeAlbedo(f_A).value - after.DecodeAlbedo(f_A).value).abs().max().item<double>(), 0);
  auto csv = ReadCsv(s2.csv_path);
  ASSERT_EQ(csv.rows.size(), 40u);
  EXPECT_LT(csv.Mean(34, 40, "gt_albedo"), 0.9 * csv.Mean(0, 6, "gt_albedo"));
  EXPECT_LT(csv.Mean(34, 40, "gt_shape"), 0.9 * csv.Mean(0, 6, "gt_shape"));
  EXPECT_TRUE(std::isnan(csv.Get(0, "gt_latent_shape")));
  EXPECT_TRUE(std::isnan(csv.Get(0, "landmark")));
  // Validation decodes the encoder's own latents.
  auto val = ReadCsv(s2.val_csv_path);
  ASSERT_EQ(val.rows.size(), 2u);
  EXPECT_GT(val.Get(1, "metric_shape_l1"), 0);
  // A full phase, or no latent targets, is refused by name.
  TrainOptions bad = d;
  bad.steps = 50;
  EXPECT_THROW(bad.Check(), UsageError);
  bad = d;
  bad.out = (second.path() / "again").string();
  bad.latent_targets.clear();
  bad.latent_target_items = 0;
  EXPECT_THROW(RunTrain(bad), UsageError);
}

TEST(TrainRun, FullObjectiveLowersTheReconstruction) {
  testing::TempDir out;
  TrainOptions o = BaseOptions(out.path().string());
  o.steps = 16;
  o.pretrain_steps = 0;
  auto s = RunTrain(o);
  auto csv = ReadCsv(s.csv_path);
  ASSERT_EQ(csv.rows.size(), 16u);
  EXPECT_EQ(csv.rows[0][1], "full");
  for (const char* n : {"total", "rec_proxy-proxy", "rec_proxy-true", "rec_true-proxy"})
    EXPECT_LT(csv.Mean(12, 16, n), 0.9 * csv.Mean(0, 4, n)) << n;
  // The landmark term starts near its noise floor (M's statistics come from the ground
  // truth, ~1 px on the 64 px crops): it must stay there, not drift.
  EXPECT_LT(csv.Mean(12, 16, "landmark"), 2 * csv.Mean(0, 4, "landmark") + 1e-5);
  EXPECT_TRUE(std::isnan(csv.Get(0, "rec_true-true")));
}

TEST(TrainRun, ResumeReproducesTheUninterruptedRun) {
  testing::TempDir a, b;
  TrainOptions o = BaseOptions(a.path().string());
  o.steps = 8;
  o.pretrain_steps = 3;
  o.lr_schedule = "step";
  o.lr_decay_steps = 3;
  auto full = RunTrain(o);
  o.out = b.path().string();
  o.stop_at = 4;
  auto first = RunTrain(o);
  EXPECT_TRUE(first.stopped_early);
  EXPECT_FALSE(fs::exists(first.model_path));
  o.stop_at = 0;
  o.resume = true;
  auto second = RunTrain(o);
  EXPECT_EQ(second.start_step, 4);
  auto ma = model::FaceModel::Load(full.model_path), mb = model::FaceModel::Load(second.model_path);
  auto ta = ma.NamedTensors(), tb = mb.NamedTensors();
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    ASSERT_EQ(ta[i].first, tb[i].first);
    if (!ta[i].second.is_floating_point()) {
      EXPECT_TRUE(torch::equal(ta[i].second, tb[i].second)) << ta[i].first;
      continue;
    }
    EXPECT_LE((ta[i].second - tb[i].second).abs().max().item<double>(), 1e-6) << ta[i].first;
  }
  auto ca = ReadCsv(full.csv_path), cb = ReadCsv(second.csv_path);
  ASSERT_EQ(ca.rows.size(), 8u);
  ASSERT_EQ(cb.rows.size(), 8u);
  for (size_t r = 0; r < 8; ++r) EXPECT_NEAR(ca.Get(r, "total"), cb.Get(r, "total"), 1e-5) << r;
  // Resuming with another seed is refused.
  o.seed = 99;
  EXPECT_THROW(RunTrain(o), UsageError);
}

TEST(TrainRun, CsvColumnsAndBadOptions) {
  const std::string h = CsvHeader();
  for (const char* n : {"step,phase,lr,total,landmark", "rec_proxy-proxy", "rec_proxy-true", "rec_true-proxy",
                        "albedo_symmetry", "albedo_constancy", "shape_smoothness", "residual_shape",
                        "residual_albedo", "residual_symmetry", "metric_l21", "grad_norm,seconds"})
    EXPECT_NE(h.find(n), std::string::npos) << n;
  TrainOptions o = BaseOptions("x");
  o.preset = "demo";  // both --model-in and --preset
  EXPECT_THROW(o.Check(), UsageError);
  o = BaseOptions("x");
  o.lr_schedule = "weird";
  EXPECT_THROW(o.Check(), UsageError);
  o = BaseOptions("x");
  o.batch = 0;
  EXPECT_THROW(o.Check(), UsageError);
}

}  // namespace
}  // namespace facebatch::train
