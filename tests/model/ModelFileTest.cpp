// The model file (schemas/model.md): round trip, and clear errors on bad files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "core/Error.h"
#include "io/Hdf5.h"

namespace facebatch::model {
namespace {
using testutil::TinyConfig;
using testutil::TinyModel;
namespace h5 = io::hdf5;

// Expects Load to fail with an InputError naming the file and containing `needle`.
void ExpectLoadError(const std::string& path, const std::string& needle) {
  try {
    FaceModel::Load(path);
    ADD_FAILURE() << "loading " << path << " should fail (" << needle << ")";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path, 0), 0u) << "message must start with the path: " << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = TinyConfig();
    path_ = (dir_ / "tiny.h5").string();
    auto m = TinyModel(config_, 4);
    m.provenance().command = "unit test";
    m.provenance().training_data = "nothing";
    m.provenance().training_steps = 42;
    m.Save(path_);
  }
  std::string Copy(const std::string& name) {
    auto p = (dir_ / name).string();
    std::filesystem::copy_file(path_, p, std::filesystem::copy_options::overwrite_existing);
    return p;
  }
  testing::TempDir dir_;
  ModelConfig config_;
  std::string path_;
};

TEST_F(ModelFile, RoundTripGivesIdenticalOutputs) {
  torch::NoGradGuard g;
  auto original = TinyModel(config_, 4);
  original.eval();
  {  // make the BatchNorm running statistics non-trivial before saving
    original.train();
    original.DecodeShape(torch::randn({4, config_.latent_shape}));
    original.Encode(torch::rand({4, 3, config_.image_size, config_.image_size}));
    original.eval();
  }
  auto n = original.normalisation();
  n.l_mean = n.l_mean + 0.25;
  original.SetNormalisation(n);
  auto p = (dir_ / "rt.h5").string();
  original.provenance().training_steps = 7;
  original.Save(p);
  auto loaded = FaceModel::Load(p);
  loaded.eval();
  EXPECT_EQ(loaded.config().ToJson(), original.config().ToJson());
  EXPECT_EQ(loaded.WeightsHash(), original.WeightsHash());
  EXPECT_EQ(loaded.provenance().training_steps, 7);
  EXPECT_FALSE(loaded.provenance().created.empty());
  auto images = torch::rand({2, 3, config_.image_size, config_.image_size});
  auto e0 = original.Encode(images), e1 = loaded.Encode(images);
  EXPECT_TRUE(torch::equal(e0.f_shape, e1.f_shape));
  EXPECT_TRUE(torch::equal(e0.lighting, e1.lighting));
  EXPECT_TRUE(torch::equal(e0.projection, e1.projection));
  auto s0 = original.DecodeShape(e0.f_shape), s1 = loaded.DecodeShape(e0.f_shape);
  EXPECT_TRUE(torch::equal(s0.value, s1.value));
  EXPECT_TRUE(torch::equal(s0.proxy, s1.proxy));
  auto a0 = original.DecodeAlbedo(e0.f_albedo), a1 = loaded.DecodeAlbedo(e0.f_albedo);
  EXPECT_TRUE(torch::equal(a0.value, a1.value));
  // The template (topology included) survives.
  const auto& t0 = original.face_template();
  const auto& t1 = loaded.face_template();
  EXPECT_TRUE(torch::equal(t0.topology.mask, t1.topology.mask));
  EXPECT_TRUE(torch::equal(t0.topology.triangles, t1.topology.triangles));
  EXPECT_TRUE(torch::equal(t0.topology.landmarks68, t1.topology.landmarks68));
  EXPECT_TRUE(torch::equal(t0.topology.flip, t1.topology.flip));
  EXPECT_TRUE(torch::equal(t0.landmarks68_uv, t1.landmarks68_uv));
  EXPECT_TRUE(torch::equal(t0.mean_albedo, t1.mean_albedo));
  EXPECT_EQ(t1.topology.regions[2].row0, t0.topology.regions[2].row0);
  EXPECT_EQ(t1.source, t0.source);
}

TEST(FaceModelHandle, CopiesShareCloneIsIndependent) {
  torch::NoGradGuard g;
  auto c = TinyConfig();
  auto a = TinyModel(c, 3);
  a.provenance().training_steps = 5;
  auto shared = a;
  auto clone = a.Clone();
  EXPECT_EQ(clone.WeightsHash(), a.WeightsHash());
  EXPECT_EQ(clone.provenance().training_steps, 5);
  a.parameters()[0].add_(1.0);
  EXPECT_EQ(shared.WeightsHash(), a.WeightsHash());
  EXPECT_NE(clone.WeightsHash(), a.WeightsHash());
  a.eval();
  clone.eval();
  auto f = torch::randn({1, c.latent_shape});
  EXPECT_TRUE(torch::equal(a.DecodeShape(f).value, clone.DecodeShape(f).value));  // decoder untouched by the edit
}

TEST_F(ModelFile, LayoutIsSelfDescribing) {
  auto f = h5::File::OpenRead(path_);
  auto root = f.root();
  EXPECT_EQ(root.GetStringAttribute("format"), "facebatch-model");
  EXPECT_EQ(root.GetIntAttribute("version"), kModelFormatVersion);
  EXPECT_EQ(root.GetStringAttribute("kind"), "nonlinear");
  EXPECT_EQ(root.GetStringAttribute("command"), "unit test");
  EXPECT_EQ(root.GetStringAttribute("training_data"), "nothing");
  EXPECT_EQ(root.GetIntAttribute("training_steps"), 42);
  EXPECT_EQ(ModelConfig::FromJson(root.GetStringAttribute("configuration")).ToJson(), config_.ToJson());
  for (const char* g : {"template", "normalisation", "weights"}) EXPECT_TRUE(root.HasGroup(g)) << g;
  auto w = root.OpenGroup("weights");
  EXPECT_TRUE(w.HasDataset("encoder.trunk.0.conv.weight"));
  EXPECT_TRUE(w.HasDataset("shape_decoder.local_nose.fc.weight"));
  EXPECT_TRUE(w.HasDataset("albedo_decoder.head_proxy.1.weight"));
  auto info = w.DatasetInfo("encoder.trunk.0.conv.weight");
  EXPECT_EQ(info.dtype, h5::DType::kFloat32);
  EXPECT_EQ(info.dims, (std::vector<int64_t>{config_.encoder_channels[0], 3, 7, 7}));
  EXPECT_EQ(root.OpenGroup("template").DatasetInfo("mask").dims, (std::vector<int64_t>{config_.uv_rows, config_.uv_cols}));
  EXPECT_EQ(root.OpenGroup("normalisation").DatasetInfo("l_mean").dims, (std::vector<int64_t>{27}));
}

TEST_F(ModelFile, MissingForeignAndTruncatedFilesFailClearly) {
  ExpectLoadError((dir_ / "absent.h5").string(), "no such file");
  auto text = (dir_ / "foreign.h5").string();
  testing::WriteFile(text, "this is not a model\n");
  ExpectLoadError(text, "not an HDF5 file");
  auto empty = (dir_ / "empty.h5").string();
  testing::WriteFile(empty, "");
  ExpectLoadError(empty, "not an HDF5 file");
  // A foreign HDF5 file (no format attribute).
  auto other = (dir_ / "other.h5").string();
  {
    auto f = h5::File::Create(other);
    f.root().WriteDataset("data", h5::MakeArray(std::vector<float>{1, 2, 3}, {3}));
    f.Close();
  }
  ExpectLoadError(other, "not a facebatch model file");
  // Truncated: the first half of a real model file.
  auto bytes = testing::ReadFile(path_);
  for (double frac : {0.5, 0.9}) {
    auto cut = (dir_ / "cut.h5").string();
    testing::WriteFile(cut, bytes.substr(0, static_cast<size_t>(bytes.size() * frac)));
    try {
      FaceModel::Load(cut);
      ADD_FAILURE() << "truncated file loaded";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(cut, 0), 0u) << e.what();
    }
  }
}

TEST_F(ModelFile, NewerOrUnknownVersionIsRejected) {
  auto p = Copy("newer.h5");
  {
    auto f = h5::File::OpenReadWrite(p);
    f.root().SetAttribute("version", int64_t{kModelFormatVersion + 1});
    f.Close();
  }
  ExpectLoadError(p, "newer");
  {
    auto f = h5::File::OpenReadWrite(p);
    f.root().SetAttribute("version", int64_t{0});
    f.Close();
  }
  ExpectLoadError(p, "unknown model file format version 0");
  {
    auto f = h5::File::OpenReadWrite(p);
    f.root().SetAttribute("version", int64_t{1});
    f.root().SetAttribute("format", std::string("someone-else"));
    f.Close();
  }
  ExpectLoadError(p, "not a facebatch model file");
}

TEST_F(ModelFile, CorruptedWeightsAreDetected) {
  // Flip bytes inside a weight tensor's data, found by its byte pattern in the file.
  auto m = FaceModel::Load(path_);
  at::Tensor w;
  for (auto& [name, t] : m.NamedTensors())
    if (name == "shape_decoder.global.fc.weight") w = t.contiguous();
  ASSERT_TRUE(w.defined());
  std::string pattern(static_cast<const char*>(w.data_ptr()), 64);
  auto bytes = testing::ReadFile(path_);
  auto at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  for (size_t i = 0; i < 16; ++i) bytes[at + 8 + i] = static_cast<char>(bytes[at + 8 + i] ^ 0x5a);
  auto p = (dir_ / "corrupt.h5").string();
  testing::WriteFile(p, bytes);
  ExpectLoadError(p, "checksum mismatch");
}

TEST_F(ModelFile, MismatchedFilesFailNamingTheTensor) {
  // Configuration says a different latent size than the stored weights.
  auto p = Copy("mismatch.h5");
  {
    auto f = h5::File::OpenReadWrite(p);
    auto c = config_;
    c.latent_shape += 3;
    f.root().SetAttribute("configuration", c.ToJson());
    f.Close();
  }
  ExpectLoadError(p, "/weights/");
  ExpectLoadError(p, "configuration expects");
  // A weight missing.
  auto q = Copy("missing.h5");
  {
    auto f = h5::File::OpenReadWrite(q);
    f.root().OpenGroup("weights").Remove("albedo_decoder.fusion.conv.weight");
    f.Close();
  }
  ExpectLoadError(q, "albedo_decoder.fusion.conv.weight: missing");
  // An unexpected extra tensor (e.g. a proxy head in a file that says proxy = false).
  auto r = Copy("extra.h5");
  {
    auto f = h5::File::OpenReadWrite(r);
    auto c = config_;
    c.proxy = false;
    f.root().SetAttribute("configuration", c.ToJson());
    f.Close();
  }
  ExpectLoadError(r, "unexpected tensor");
  // Kind attribute disagreeing with the configuration.
  auto k = Copy("kind.h5");
  {
    auto f = h5::File::OpenReadWrite(k);
    f.root().SetAttribute("kind", std::string("linear"));
    f.Close();
  }
  ExpectLoadError(k, "disagrees");
  // Template maps of the wrong size.
  auto t = Copy("template.h5");
  {
    auto f = h5::File::OpenReadWrite(t);
    auto tg = f.root().OpenGroup("template");
    tg.Remove("mean_albedo");
    tg.WriteDataset("mean_albedo", h5::MakeArray(std::vector<float>(3 * 4 * 4), {3, 4, 4}));
    f.Close();
  }
  ExpectLoadError(t, "/template/mean_albedo: shape [3, 4, 4]");
}

TEST_F(ModelFile, TopologyIsRebuiltWhenOnlyMaskAndLandmarksAreStored) {
  auto p = Copy("minimal.h5");
  {
    auto f = h5::File::OpenReadWrite(p);
    auto tg = f.root().OpenGroup("template");
    for (const char* name : {"vertex_of_pixel", "pixel_of_vertex", "vertex_uv", "triangles", "flip", "landmarks68"})
      tg.Remove(name);
    f.Close();
  }
  auto full = FaceModel::Load(path_);
  auto minimal = FaceModel::Load(p);
  const auto& a = full.face_template().topology;
  const auto& b = minimal.face_template().topology;
  ASSERT_TRUE(b.triangles.defined());
  EXPECT_TRUE(torch::equal(a.triangles, b.triangles));
  EXPECT_TRUE(torch::equal(a.vertex_of_pixel, b.vertex_of_pixel));
  EXPECT_TRUE(torch::equal(a.landmarks68, b.landmarks68));
  EXPECT_TRUE(torch::equal(a.flip, b.flip));
  EXPECT_EQ(b.regions[3].rows, a.regions[3].rows);
}

TEST_F(ModelFile, ReadableByH5py) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  auto r = std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null");
  if (r != 0) GTEST_SKIP() << "h5py not installed";
  std::string cmd = "/usr/bin/python3 -c \"import h5py,json; f=h5py.File('" + path_ +
                    "','r'); c=json.loads(f.attrs['configuration']); "
                    "assert f.attrs['format']=='facebatch-model'; "
                    "assert f['template/mean_shape'].shape==(3,c['uv_rows'],c['uv_cols']); "
                    "assert f['weights/encoder.trunk.0.conv.weight'].dtype=='float32'; print('ok')\"";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

}  // namespace
}  // namespace facebatch::model
