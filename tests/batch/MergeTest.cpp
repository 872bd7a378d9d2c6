// `facebatch merge` (issue 8): the merged file equals the concatenation of the
// shards (every dataset, every row), its virtual datasets open from another
// working directory and after moving the directory, h5py reads it, refusal on
// a missing or incomplete shard, --allow-missing records the gaps, and --copy
// equals the virtual view.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "MergeFixture.h"
#include "TestSupport.h"
#include "batch/Merge.h"
#include "batch/ShardFile.h"
#include "batch/Status.h"
#include "core/Error.h"
#include "io/Hdf5Rows.h"

namespace facebatch::batch {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::ReadFile;
using facebatch::testing::RunCli;
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;
using merge_test::FitFixture;

constexpr int kShards = 3;
constexpr int kImages = 8;

// One fit of kImages images in kShards shards, shared by the tests (each test copies `fits`).
class MergeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("facebatch-merge");
    fixture_ = new FitFixture(merge_test::MakeFitFixture(dir_->path(), kImages));
    for (int i = 0; i < kShards; ++i) merge_test::FitShard(*fixture_, dir_->path() / "fits", i, kShards);
  }
  static void TearDownTestSuite() {
    delete fixture_;
    delete dir_;
  }
  // A private copy of the fit output directory.
  fs::path CopyFits(const std::string& name) {
    fs::path d = work_.path() / name;
    fs::create_directories(d.parent_path());
    fs::copy(dir_->path() / "fits", d, fs::copy_options::recursive);
    return d;
  }
  static fs::path ShardFile(const fs::path& d, int i) {
    char b[64];
    std::snprintf(b, sizeof(b), "shard-%05d-of-%05d", i, kShards);
    return d / (std::string(b) + ".h5");
  }
  static fs::path Marker(const fs::path& d, int i) {
    auto p = ShardFile(d, i);
    return p.replace_extension(".done.json");
  }

  static TempDir* dir_;
  static FitFixture* fixture_;
  TempDir work_{"facebatch-merge-work"};
};
TempDir* MergeTest::dir_ = nullptr;
FitFixture* MergeTest::fixture_ = nullptr;

// The source tree (the samples' parent).
std::string SourceDir() { return fs::path(FACEBATCH_SAMPLES).parent_path().string(); }

bool SameFloat(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Every dataset of `merged` equals the concatenation (in shard order) of the shards'.
void ExpectConcatenation(const fs::path& merged, const std::vector<fs::path>& shards) {
  io::hdf5::RowReader m(merged.string());
  const auto layout = LayoutOfFile(m);
  int64_t total = 0;
  for (const auto& s : shards) total += io::hdf5::RowReader(s.string()).IntAttr("/", "num_images");
  EXPECT_EQ(m.IntAttr("/", "num_images"), total);
  for (const char* topo : {"/topology/triangles", "/topology/vertex_uv", "/topology/landmarks68", "/topology/mask"}) {
    auto a = m.Read(topo), b = io::hdf5::RowReader(shards.front().string()).Read(topo);
    EXPECT_EQ(a.dims, b.dims) << topo;
    EXPECT_EQ(a.i64, b.i64) << topo;
    EXPECT_EQ(a.f32, b.f32) << topo;
  }
  ASSERT_GT(layout.fields.size(), 20u);
  for (const auto& f : layout.fields) {
    const auto got = m.Read(f.path);
    ASSERT_EQ(got.rows(), total) << f.path;
    ASSERT_EQ(got.dtype, f.dtype) << f.path;
    io::hdf5::RowData want;
    for (const auto& s : shards) {
      auto d = io::hdf5::RowReader(s.string()).Read(f.path);
      want.f32.insert(want.f32.end(), d.f32.begin(), d.f32.end());
      want.f64.insert(want.f64.end(), d.f64.begin(), d.f64.end());
      want.i64.insert(want.i64.end(), d.i64.begin(), d.i64.end());
      want.strings.insert(want.strings.end(), d.strings.begin(), d.strings.end());
    }
    EXPECT_EQ(got.strings, want.strings) << f.path;
    EXPECT_EQ(got.i64, want.i64) << f.path;
    ASSERT_EQ(got.f32.size(), want.f32.size()) << f.path;
    for (size_t i = 0; i < got.f32.size(); ++i) ASSERT_TRUE(SameFloat(got.f32[i], want.f32[i])) << f.path << " element " << i;
    ASSERT_EQ(got.f64.size(), want.f64.size()) << f.path;
    for (size_t i = 0; i < got.f64.size(); ++i) ASSERT_TRUE(SameFloat(got.f64[i], want.f64[i])) << f.path << " element " << i;
  }
}

bool IsVirtual(const fs::path& file, const std::string& path) {
  hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, path.c_str(), H5P_DEFAULT);
  hid_t p = H5Dget_create_plist(d);
  bool v = H5Pget_layout(p) == H5D_VIRTUAL;
  H5Pclose(p);
  H5Dclose(d);
  H5Fclose(f);
  return v;
}

TEST_F(MergeTest, VirtualMergeIsTheConcatenationAndMovesWithItsShards) {
  auto fits = CopyFits("run/fits");
  auto r = RunCli({"merge", fits.string(), "--out", (fits / "merged.h5").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("merged 3 of 3 shards"), std::string::npos) << r.output;
  std::vector<fs::path> shards;
  for (int i = 0; i < kShards; ++i) shards.push_back(ShardFile(fits, i));
  ExpectConcatenation(fits / "merged.h5", shards);
  EXPECT_TRUE(IsVirtual(fits / "merged.h5", "/latents/f_shape"));
  EXPECT_TRUE(IsVirtual(fits / "merged.h5", "/images/id"));
  EXPECT_TRUE(IsVirtual(fits / "merged.h5", "/maps/albedo"));  // no copy of the data

  {
    io::hdf5::RowReader m((fits / "merged.h5").string());
    EXPECT_EQ(m.StringAttr("/", "format"), kShardFormat);
    EXPECT_EQ(m.IntAttr("/", "schema_version"), kShardSchemaVersion);
    EXPECT_EQ(m.StringAttr("/", "merged_storage"), "virtual");
    EXPECT_EQ(m.StringAttr("/", "merged_shards"), "0-2");
    EXPECT_EQ(m.StringAttr("/", "merged_missing"), "");
    EXPECT_EQ(m.IntAttr("/", "merged_num_shards"), kShards);
    auto sources = nlohmann::json::parse(m.StringAttr("/", "merged_sources"));
    ASSERT_EQ(sources.size(), 3u);
    EXPECT_EQ(sources[1]["file"], "shard-00001-of-00003.h5");  // relative
    // One failed image (the deleted one), every other ok; every id of the manifest exactly once.
    auto ids = m.Read("/images/id").strings;
    std::set<std::string> unique(ids.begin(), ids.end());
    EXPECT_EQ(ids.size(), static_cast<size_t>(kImages));
    EXPECT_EQ(unique.size(), ids.size());
    auto status = m.Read("/images/status").strings;
    EXPECT_EQ(std::count(status.begin(), status.end(), "failed"), 1);
  }
  const auto before = io::hdf5::RowReader((fits / "merged.h5").string()).Read("/maps/albedo").f32;

  // Move the whole directory, then read it from another working directory.
  fs::path moved = work_.path() / "elsewhere" / "fits-moved";
  fs::create_directories(moved.parent_path());
  fs::rename(work_.path() / "run", work_.path() / "elsewhere-run");
  fs::rename(work_.path() / "elsewhere-run" / "fits", moved);
  const fs::path cwd = fs::current_path();
  fs::current_path(work_.path());
  {
    auto after = io::hdf5::RowReader((moved / "merged.h5").string()).Read("/maps/albedo").f32;
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) ASSERT_TRUE(SameFloat(after[i], before[i])) << i;
  }
  fs::current_path(cwd);
  auto ins = RunCli({"inspect", "fits-moved/merged.h5"}, "cd " + (work_.path() / "elsewhere").string() + " &&");
  ASSERT_EQ(ins.exit_code, 0) << ins.output;
  EXPECT_NE(ins.output.find("ok"), std::string::npos) << ins.output;

  // h5py (Debian's python3-h5py), an independent reader, from yet another directory.
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) GTEST_SKIP() << "no h5py: reader check skipped";
  std::string cmd = "cd / && /usr/bin/python3 " + SourceDir() + "/tests/readers/check_h5py.py --merged " +
                    SourceDir() + "/schemas " + (moved / "merged.h5").string() + " " +
                    fixture_->manifest.string();
  for (int i = 0; i < kShards; ++i) cmd += " " + ShardFile(moved, i).string();
  EXPECT_EQ(std::system((cmd + " > " + (work_.path() / "h5py.log").string() + " 2>&1").c_str()), 0)
      << ReadFile(work_.path() / "h5py.log");
}

TEST_F(MergeTest, CopyEqualsTheVirtualViewAndIsSelfContained) {
  auto fits = CopyFits("fits");
  ASSERT_EQ(RunCli({"merge", fits.string(), "--out", (work_.path() / "out" / "virtual.h5").string()}).exit_code, 0);
  auto r = RunCli({"merge", fits.string(), "--copy", "--out", (work_.path() / "out" / "copy.h5").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The virtual file lives in another directory: its sources are ../fits/...
  auto sources = nlohmann::json::parse(io::hdf5::RowReader((work_.path() / "out" / "virtual.h5").string()).StringAttr("/", "merged_sources"));
  EXPECT_EQ(sources[0]["file"], "../fits/shard-00000-of-00003.h5");
  ExpectConcatenation(work_.path() / "out" / "copy.h5", {work_.path() / "out" / "virtual.h5"});
  // The virtual view is a valid shard file too (validate skips chunking checks for it).
  auto vv = RunCli({"validate", (work_.path() / "out" / "virtual.h5").string()});
  EXPECT_EQ(vv.exit_code, 0) << vv.output;
  EXPECT_FALSE(IsVirtual(work_.path() / "out" / "copy.h5", "/latents/f_shape"));
  EXPECT_EQ(io::hdf5::RowReader((work_.path() / "out" / "copy.h5").string()).StringAttr("/", "merged_storage"), "copy");
  // Self-contained: still readable, and a valid shard file, without the shards.
  fs::remove_all(fits);
  auto v = RunCli({"validate", (work_.path() / "out" / "copy.h5").string()});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  auto ids = io::hdf5::RowReader((work_.path() / "out" / "copy.h5").string()).Read("/images/id").strings;
  EXPECT_EQ(ids.size(), static_cast<size_t>(kImages));
}

TEST_F(MergeTest, RefusesMissingOrIncompleteShardsUnlessAllowed) {
  auto fits = CopyFits("fits");
  // Shard 1: marker gone (stopped while consolidating). Shard 2: no files at all.
  fs::remove(Marker(fits, 1));
  for (const auto& e : fs::directory_iterator(fits))
    if (e.path().filename().string().rfind("shard-00002-", 0) == 0) fs::remove_all(e.path());
  auto out = work_.path() / "merged.h5";
  auto r = RunCli({"merge", fits.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, kExitError) << r.output;
  EXPECT_NE(r.output.find("2 of 3 shards are not complete (1-2)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shard 1: failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("shard 2: missing"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));

  auto a = RunCli({"merge", fits.string(), "--out", out.string(), "--allow-missing"});
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_NE(a.output.find("MISSING shards"), std::string::npos) << a.output;
  io::hdf5::RowReader m(out.string());
  EXPECT_EQ(m.StringAttr("/", "merged_shards"), "0");
  EXPECT_EQ(m.StringAttr("/", "merged_missing"), "1-2");
  ExpectConcatenation(out, {ShardFile(fits, 0)});
}

TEST_F(MergeTest, RefusesAShardWhoseRowsDisagreeWithItsMarker) {
  auto fits = CopyFits("fits");
  auto marker = nlohmann::json::parse(ReadFile(Marker(fits, 0)));
  marker["num_images"] = marker["num_images"].get<int>() + 1;
  WriteFile(Marker(fits, 0), marker.dump());
  auto out = work_.path() / "m.h5";
  auto r = RunCli({"merge", fits.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, kExitError) << r.output;
  EXPECT_NE(r.output.find("shard 0: failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("the marker counts"), std::string::npos) << r.output;

  // Same ids count but other ids: the ids hash catches it.
  marker["num_images"] = marker["num_images"].get<int>() - 1;
  marker["ids_hash"] = "fnv1a64:0000000000000000";
  WriteFile(Marker(fits, 0), marker.dump());
  r = RunCli({"merge", fits.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, kExitError) << r.output;
  EXPECT_NE(r.output.find("ids_hash"), std::string::npos) << r.output;
}

TEST_F(MergeTest, ExplicitFilesMergeInShardOrderAndOthersAreMissing) {
  auto fits = CopyFits("fits");
  auto out = work_.path() / "two.h5";
  auto r = RunCli({"merge", ShardFile(fits, 2).string(), ShardFile(fits, 0).string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, kExitError) << r.output;
  EXPECT_NE(r.output.find("shard 1: missing (not among the inputs)"), std::string::npos) << r.output;
  r = RunCli({"merge", ShardFile(fits, 2).string(), ShardFile(fits, 0).string(), "--out", out.string(), "--allow-missing"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ExpectConcatenation(out, {ShardFile(fits, 0), ShardFile(fits, 2)});
  EXPECT_EQ(io::hdf5::RowReader(out.string()).StringAttr("/", "merged_missing"), "1");
}

}  // namespace
}  // namespace facebatch::batch
