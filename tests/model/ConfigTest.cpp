#include <gtest/gtest.h>

#include "core/Error.h"
#include "model/ModelConfig.h"
#include "model/Sha256.h"

namespace facebatch::model {
namespace {

TEST(ModelConfig, PresetsAreValidAndDistinct) {
  auto paper = Preset("paper");
  EXPECT_NO_THROW(paper.Check());
  EXPECT_EQ(paper.uv_rows, 192);
  EXPECT_EQ(paper.uv_cols, 224);
  EXPECT_EQ(paper.latent_shape, 320);
  EXPECT_EQ(paper.latent_albedo, 320);
  EXPECT_EQ(paper.global_steps(), 5);  // section 3.4: five up-sampling steps
  EXPECT_EQ(paper.local_steps(), 3);   // local pathways: three
  EXPECT_EQ(paper.AblationName(), "gl-proxy");
  auto demo = Preset("demo");
  EXPECT_NO_THROW(demo.Check());
  EXPECT_LT(demo.uv_rows * demo.uv_cols, paper.uv_rows * paper.uv_cols);
  EXPECT_THROW(Preset("huge"), UsageError);
}

TEST(ModelConfig, JsonRoundTrip) {
  auto c = Preset("paper");
  c.SetAblation("gl");
  c.kind = ModelKind::kLinear;
  c.regions[2].row0 += 1;
  auto back = ModelConfig::FromJson(c.ToJson());
  EXPECT_EQ(back.ToJson(), c.ToJson());
  EXPECT_EQ(back.regions[2].row0, c.regions[2].row0);
  EXPECT_FALSE(back.proxy);
  EXPECT_EQ(back.kind, ModelKind::kLinear);
  EXPECT_THROW(ModelConfig::FromJson("{\"kind\": \"nonlinear\"}"), Error);
  EXPECT_THROW(ModelConfig::FromJson("not json"), Error);
}

TEST(ModelConfig, CheckRejectsBadValues) {
  auto c = Preset("demo");
  c.regions[3].row0 = c.uv_rows - 2;  // box leaves the map
  try {
    c.Check();
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("mouth"), std::string::npos) << e.what();
  }
  c = Preset("demo");
  c.global_channels = {8};
  EXPECT_THROW(c.Check(), UsageError);
  c = Preset("demo");
  c.latent_shape = 0;
  EXPECT_THROW(c.Check(), UsageError);
  EXPECT_THROW(c.SetAblation("everything"), UsageError);
}

TEST(ModelConfig, ParseUvSizeAndRegions) {
  EXPECT_EQ(ParseUvSize("192x224"), std::make_pair(192, 224));
  EXPECT_EQ(ParseUvSize("37X53"), std::make_pair(37, 53));
  EXPECT_THROW(ParseUvSize("192"), UsageError);
  EXPECT_THROW(ParseUvSize("192x224x3"), UsageError);
  EXPECT_THROW(ParseUvSize("-4x8"), UsageError);
  for (auto [U, V] : {std::pair{192, 224}, std::pair{37, 53}, std::pair{8, 8}}) {
    auto r = DefaultRegions(U, V);
    for (const auto& b : r) {
      EXPECT_GE(b.row0, 0);
      EXPECT_GE(b.rows, 1);
      EXPECT_LE(b.row0 + b.rows, U);
      EXPECT_LE(b.col0 + b.cols, V);
    }
    // The right eye mirrors the left eye about the vertical centre line.
    EXPECT_EQ(r[render::kRightEye].col0 + r[render::kRightEye].cols, V - r[render::kLeftEye].col0);
  }
}

TEST(Sha256, KnownVectors) {
  Sha256 a;
  EXPECT_EQ(a.HexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 b;
  b.Update("abc");
  EXPECT_EQ(b.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 c;  // two blocks, fed in pieces
  std::string s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  c.Update(s.substr(0, 10));
  c.Update(s.substr(10));
  EXPECT_EQ(c.HexDigest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace facebatch::model
