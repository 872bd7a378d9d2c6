// batch::ShardReader: per-image reads of a shard file written by the real
// writer, float16 widening, root attributes, and rejection of foreign files.
#include <gtest/gtest.h>

#include <random>

#include "batch/ShardFile.h"
#include "batch/ShardReader.h"
#include "core/Error.h"
#include "io/Hdf5Rows.h"
#include "TestSupport.h"

namespace facebatch::batch {
namespace {
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;

struct Fixture {
  ShardLayout layout;
  ShardHeader header;
  std::vector<ImageRecord> records;
};

Fixture MakeFixture(bool half, int n) {
  Fixture f;
  LayoutSizes s;
  s.latent_shape = 3, s.latent_albedo = 2, s.uv_rows = 2, s.uv_cols = 3, s.num_vertices = 4, s.num_triangles = 2;
  s.terms = {"photometric", "landmark", "total"};
  f.layout = ShardLayout::Make(s, ParseOutputs("all"), half);
  f.header.triangles = {0, 1, 2, 1, 3, 2};
  f.header.vertex_uv = {0, 0, 1, 0, 0, 1, 1, 1};
  f.header.landmarks68 = std::vector<int64_t>(68, 3);
  f.header.mask = {1, 1, 0, 1, 1, 0};
  f.header.string_attrs["model_sha256"] = "abc";
  f.header.string_attrs["shard"] = "1/4";
  f.header.int_attrs["shard_index"] = 1;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2, 2);
  for (int i = 0; i < n; ++i) {
    ImageRecord r;
    r.id = "img" + std::to_string(i);
    r.position = i;
    for (const auto& fs : f.layout.fields) {
      const auto size = static_cast<size_t>(fs.size());
      switch (fs.dtype) {
        case io::hdf5::DType::kString:
          r.strings[fs.path] = fs.path == "/images/id" ? r.id : (fs.path == "/images/status" ? (i == 1 ? "failed" : "ok") : "s" + std::to_string(i));
          break;
        case io::hdf5::DType::kFloat32:
        case io::hdf5::DType::kFloat16: {
          auto& v = r.floats[fs.path];
          for (size_t k = 0; k < size; ++k) v.push_back(u(rng));
          break;
        }
        case io::hdf5::DType::kFloat64: {
          auto& v = r.doubles[fs.path];
          for (size_t k = 0; k < size; ++k) v.push_back(u(rng));
          break;
        }
        case io::hdf5::DType::kInt32:
        case io::hdf5::DType::kInt64:
        case io::hdf5::DType::kUInt8: {
          auto& v = r.ints[fs.path];
          for (size_t k = 0; k < size; ++k) v.push_back(static_cast<int64_t>(i * 10 + k));
          break;
        }
      }
    }
    f.records.push_back(std::move(r));
  }
  return f;
}

TEST(ShardReader, ReadsEveryFieldOfEveryImage) {
  TempDir dir;
  for (bool half : {false, true}) {
    auto f = MakeFixture(half, 5);
    const auto path = (dir / (half ? "h.h5" : "f.h5")).string();
    WriteShardFile(path, f.header, f.layout, f.records);
    ShardReader r(path);
    ASSERT_EQ(r.size(), 5);
    EXPECT_EQ(r.layout().half, half);
    EXPECT_EQ(r.ids()[3], "img3");
    EXPECT_EQ(r.Find("img4"), 4);
    EXPECT_EQ(r.Find("nope"), -1);
    EXPECT_EQ(r.status(1), "failed");
    EXPECT_EQ(r.status(2), "ok");
    EXPECT_EQ(r.header().triangles, f.header.triangles);
    EXPECT_EQ(r.header().vertex_uv, f.header.vertex_uv);
    EXPECT_EQ(r.header().mask, f.header.mask);
    EXPECT_EQ(r.header().string_attrs.at("model_sha256"), "abc");
    EXPECT_EQ(r.header().int_attrs.at("shard_index"), 1);
    EXPECT_EQ(r.header().string_attrs.count("format"), 0u);  // layout attributes are not repeated
    EXPECT_TRUE(r.Has("/maps/albedo_proxy"));
    const float tol = half ? 2e-3f : 0.0f;
    for (int64_t i = 4; i >= 0; --i) {  // any order
      const auto& want = f.records[static_cast<size_t>(i)];
      auto got = r.Read(i);
      EXPECT_EQ(got.id, want.id);
      for (const auto& [field, values] : want.floats) {
        const auto& g = got.floats.at(field);
        ASSERT_EQ(g.size(), values.size()) << field;
        for (size_t k = 0; k < g.size(); ++k) ASSERT_NEAR(g[k], values[k], tol * 2) << field << " " << k;
      }
      EXPECT_EQ(got.doubles, want.doubles);
      EXPECT_EQ(got.ints, want.ints);
      EXPECT_EQ(got.strings, want.strings);
      EXPECT_EQ(r.Floats("/latents/f_shape", i).size(), 3u);
      EXPECT_EQ(r.Doubles("/images/crop_to_original", i), want.doubles.at("/images/crop_to_original"));
      EXPECT_EQ(r.String("/images/source", i), want.strings.at("/images/source"));
    }
    EXPECT_EQ(r.Strings("/images/status")[1], "failed");
    auto only = r.Read(2, {"/latents/lighting"});
    EXPECT_EQ(only.floats.size(), 1u);
    EXPECT_THROW(r.Floats("/images/id", 0), Error);
    EXPECT_THROW(r.Floats("/latents/f_shape", 5), InputError);
  }
}

TEST(ShardReader, LeftOutOutputsAreReportedByName) {
  TempDir dir;
  auto f = MakeFixture(false, 2);
  auto layout = ShardLayout::Make(f.layout.sizes, ParseOutputs("albedo"), false);
  const auto path = (dir / "a.h5").string();
  WriteShardFile(path, f.header, layout, f.records);
  ShardReader r(path);
  EXPECT_TRUE(r.Has("/maps/albedo"));
  EXPECT_FALSE(r.Has("/maps/shape"));
  try {
    r.Floats("/maps/shape", 0);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/maps/shape"), std::string::npos);
  }
}

TEST(ShardReader, RejectsForeignFilesAndUnknownVersions) {
  TempDir dir;
  {
    io::hdf5::RowWriter w((dir / "v9.h5").string());
    w.Attr("/", "format", std::string(kShardFormat));
    w.Attr("/", "schema_version", int64_t{9});
    w.Close();
  }
  try {
    ShardReader r((dir / "v9.h5").string());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 9 is not supported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("v9.h5"), std::string::npos);
  }
  {
    io::hdf5::RowWriter w((dir / "other.h5").string());
    w.Attr("/", "format", std::string("facebatch-model"));
    w.Close();
  }
  EXPECT_THROW(ShardReader((dir / "other.h5").string()), InputError);
  WriteFile(dir / "text.h5", "not hdf5");
  EXPECT_THROW(ShardReader((dir / "text.h5").string()), InputError);
}

}  // namespace
}  // namespace facebatch::batch
