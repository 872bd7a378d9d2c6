#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Manifest.h"

namespace facebatch::io {
namespace {
using facebatch::testing::ReadFile;
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;

Manifest Sample() {
  Manifest m;
  m.header.corpus = "300w-lp";
  m.header.root = "/data/300W-LP";
  Item a;
  a.id = "300w-lp/AFW/AFW_1_1_0";
  a.image = "AFW/AFW_1_1_0.jpg";
  a.width = 450;
  a.height = 450;
  a.corpus = "300w-lp";
  a.subset = "AFW";
  a.landmarks.convention = LandmarkConvention::kIbug68;
  a.landmarks.origin = 1;
  for (int i = 0; i < 68; ++i) a.landmarks.points.push_back({i * 1.25 + 0.1, 400 - i / 3.0});
  a.ground_truth["Pose_Para"] = MakeMatArray(1, 7, {0.1, -0.2, 0.3, 200.5, 210.25, 0, 0.00123456789}, "single");
  a.ground_truth["roi"] = MakeMatArray(1, 4, {10, 20, 300, 310}, "int16");
  a.bbox = {1.5, 2.5, 100, 120};
  a.partition = "train";
  a.identity = 42;
  Item b;
  b.id = "300w-lp/AFW/AFW_2_1_0";
  b.image = "AFW/AFW_2_1_0.jpg";
  b.corpus = "300w-lp";
  b.landmarks.convention = LandmarkConvention::kFive;
  b.landmarks.points = {{1, 2}, {std::nan(""), 4}, {5, 6}, {7, 8}, {9, 10}};
  b.Fail("bad_landmarks", "x.pts: landmark 1 has a NaN coordinate");
  m.items = {a, b};
  return m;
}

TEST(Manifest, RoundTripKeepsEveryField) {
  TempDir dir;
  Manifest m = Sample();
  WriteManifest((dir / "m.jsonl").string(), m);
  Manifest r = ReadManifest((dir / "m.jsonl").string());
  EXPECT_EQ(r.header.corpus, "300w-lp");
  EXPECT_EQ(r.header.root, "/data/300W-LP");
  EXPECT_EQ(r.header.items_hash, m.header.items_hash);
  EXPECT_EQ(r.header.counts.at("total"), 2);
  EXPECT_EQ(r.header.counts.at("failed:bad_landmarks"), 1);
  ASSERT_EQ(r.items.size(), 2u);
  const Item& a = r.items[0];
  EXPECT_EQ(a.id, m.items[0].id);
  EXPECT_EQ(a.width, 450);
  EXPECT_EQ(a.landmarks.convention, LandmarkConvention::kIbug68);
  EXPECT_EQ(a.landmarks.origin, 1);
  ASSERT_EQ(a.landmarks.points.size(), 68u);
  for (int i = 0; i < 68; ++i) {
    EXPECT_EQ(a.landmarks.points[i].x, m.items[0].landmarks.points[i].x);  // exact doubles
    EXPECT_EQ(a.landmarks.points[i].y, m.items[0].landmarks.points[i].y);
  }
  EXPECT_EQ(a.ground_truth.at("Pose_Para").values, m.items[0].ground_truth.at("Pose_Para").values);
  EXPECT_EQ(a.ground_truth.at("Pose_Para").mat_class, "single");
  EXPECT_EQ(a.ground_truth.at("roi").dims, (std::vector<size_t>{1, 4}));
  EXPECT_EQ(a.bbox, m.items[0].bbox);
  EXPECT_EQ(a.partition, "train");
  EXPECT_EQ(a.identity, 42);
  EXPECT_EQ(a.subset, "AFW");
  const Item& b = r.items[1];
  EXPECT_FALSE(b.ok());
  EXPECT_EQ(b.reason_code, "bad_landmarks");
  EXPECT_TRUE(std::isnan(b.landmarks.points[1].x));
  // Lines are deterministic: the same items give the same hash.
  EXPECT_EQ(ItemsHash(r.items), m.header.items_hash);
}

TEST(Manifest, HashChangesWithContent) {
  Manifest m = Sample();
  std::string h = ItemsHash(m.items);
  m.items[0].landmarks.points[3].x += 1e-9;
  EXPECT_NE(ItemsHash(m.items), h);
  EXPECT_EQ(h.rfind("fnv1a64:", 0), 0u);
  EXPECT_EQ(h.size(), 8u + 16u);
  // Known FNV-1a-64 vectors.
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Manifest, RejectsUnknownVersionsFormatsAndEdits) {
  TempDir dir;
  Manifest m = Sample();
  const std::string path = (dir / "m.jsonl").string();
  WriteManifest(path, m);
  std::string text = ReadFile(path);
  size_t nl = text.find('\n');
  nlohmann::json header = nlohmann::json::parse(text.substr(0, nl));
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    WriteFile(dir / "bad.jsonl", content);
    try {
      ReadManifest((dir / "bad.jsonl").string());
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bad.jsonl"), std::string::npos) << e.what();
    }
  };
  nlohmann::json v2 = header;
  v2["version"] = 2;
  expect_error(v2.dump() + text.substr(nl), "unsupported manifest version 2");
  nlohmann::json other = header;
  other["format"] = "something-else";
  expect_error(other.dump() + text.substr(nl), "not a facebatch manifest");
  expect_error("", "empty file");
  expect_error("hello\n", "not a facebatch manifest");
  // An edited item line no longer matches items_hash.
  std::string edited = text;
  edited.replace(edited.find("AFW_2_1_0"), 9, "AFW_9_1_0");
  expect_error(edited, "items_hash");
  // A broken item line names its line number.
  expect_error(text.substr(0, nl + 1) + "{\"id\": 3}\n", "line 2");
  EXPECT_THROW(ReadManifest((dir / "missing.jsonl").string()), InputError);
}

}  // namespace
}  // namespace facebatch::io
