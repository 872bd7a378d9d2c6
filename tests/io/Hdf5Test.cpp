#include <gtest/gtest.h>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Hdf5.h"
#include "io/Hdf5Rows.h"

namespace facebatch::io::hdf5 {
namespace {

TEST(Hdf5, DatasetsAndAttributesRoundTrip) {
  testing::TempDir dir;
  auto path = (dir / "a.h5").string();
  {
    auto f = File::Create(path);
    auto root = f.root();
    root.SetAttribute("name", std::string("h\xc3\xa9llo"));
    root.SetAttribute("count", int64_t{-5});
    root.SetAttribute("scale", 2.5);
    auto g = root.CreateGroup("group");
    g.WriteDataset("f", MakeArray(std::vector<float>{1.5f, -2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}));
    g.WriteDataset("i64", MakeArray(std::vector<int64_t>{1, -2, int64_t{1} << 40}, {3}));
    g.WriteDataset("i32", MakeArray(std::vector<int32_t>{7, 8}, {1, 2}));
    g.WriteDataset("u8", MakeArray(std::vector<uint8_t>{0, 255}, {2}));
    g.WriteDataset("empty", MakeArray(std::vector<float>{}, {0, 4}));
    f.Close();
  }
  auto f = File::OpenRead(path);
  auto root = f.root();
  EXPECT_EQ(root.GetStringAttribute("name"), "h\xc3\xa9llo");
  EXPECT_EQ(root.GetIntAttribute("count"), -5);
  EXPECT_DOUBLE_EQ(root.GetDoubleAttribute("scale"), 2.5);
  EXPECT_DOUBLE_EQ(root.GetDoubleAttribute("count"), -5.0);
  EXPECT_TRUE(root.HasGroup("group"));
  EXPECT_FALSE(root.HasDataset("group"));
  auto g = root.OpenGroup("group");
  EXPECT_EQ(g.name(), "/group");
  EXPECT_EQ(g.Children(), (std::vector<std::string>{"empty", "f", "i32", "i64", "u8"}));
  auto a = g.ReadDataset("f");
  EXPECT_EQ(a.dtype, DType::kFloat32);
  EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_FLOAT_EQ(a.data<float>()[1], -2.f);
  auto b = g.ReadDataset("i64");
  EXPECT_EQ(b.dtype, DType::kInt64);
  EXPECT_EQ(b.data<int64_t>()[2], int64_t{1} << 40);
  EXPECT_EQ(g.ReadDataset("i32").data<int32_t>()[1], 8);
  EXPECT_EQ(g.ReadDataset("u8").data<uint8_t>()[1], 255);
  EXPECT_EQ(g.ReadDataset("empty").numel(), 0);
}

TEST(Hdf5, ErrorsNameTheFileAndObject) {
  testing::TempDir dir;
  auto path = (dir / "b.h5").string();
  {
    auto f = File::Create(path);
    f.root().SetAttribute("n", int64_t{3});
    f.Close();
  }
  auto f = File::OpenRead(path);
  try {
    f.root().ReadDataset("nothing");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path);
    EXPECT_NE(std::string(e.what()).find("/nothing: missing dataset"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.root().OpenGroup("g"), InputError);
  EXPECT_THROW(f.root().GetStringAttribute("n"), InputError);  // not a string
  EXPECT_THROW(f.root().GetIntAttribute("absent"), InputError);
  auto text = (dir / "t.txt").string();
  testing::WriteFile(text, "plain text");
  EXPECT_FALSE(IsHdf5(text));
  EXPECT_TRUE(IsHdf5(path));
  try {
    File::OpenRead(text);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos);
  }
  EXPECT_THROW(File::OpenRead((dir / "absent.h5").string()), InputError);
  EXPECT_THROW(File::Create((dir / "no" / "dir.h5").string()), InputError);
}

TEST(Hdf5, OverwriteAndRemove) {
  testing::TempDir dir;
  auto path = (dir / "c.h5").string();
  {
    auto f = File::Create(path);
    f.root().WriteDataset("x", MakeArray(std::vector<float>{1, 2}, {2}));
    f.root().WriteDataset("y", MakeArray(std::vector<float>{1}, {1}));
    f.Close();
  }
  {
    auto f = File::OpenReadWrite(path);
    f.root().OverwriteDataset("x", MakeArray(std::vector<float>{5, 6}, {2}));
    EXPECT_THROW(f.root().OverwriteDataset("x", MakeArray(std::vector<float>{5, 6, 7}, {3})), InputError);
    f.root().Remove("y");
    f.Close();
  }
  auto f = File::OpenRead(path);
  EXPECT_FLOAT_EQ(f.root().ReadDataset("x").data<float>()[1], 6.f);
  EXPECT_FALSE(f.root().Has("y"));
}

TEST(Hdf5, TreeApiRefusesFloat16AndStringsByName) {
  testing::TempDir dir;
  auto path = (dir / "h.h5").string();
  {
    RowWriter w(path);
    w.Create("/h", DType::kFloat16, {2}, false);
    const float v[2] = {1, 2};
    w.WriteRows("/h", 0, 2, v);
    w.Close();
  }
  EXPECT_STREQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_STREQ(DTypeName(DType::kString), "string");
  auto f = File::OpenRead(path);
  EXPECT_EQ(f.root().DatasetInfo("h").dtype, DType::kFloat16);  // described, not read
  try {
    f.root().ReadDataset("h");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path);
    EXPECT_NE(std::string(e.what()).find("/h: element type float16 is not supported"), std::string::npos) << e.what();
  }
  auto g = File::Create((dir / "g.h5").string());
  Array a;
  a.dtype = DType::kString;
  EXPECT_THROW(g.root().WriteDataset("s", a), InputError);
  EXPECT_THROW(g.root().CreateDataset("h", DType::kFloat16, {2}), InputError);
}

// Row API: chunked storage, float16, strings, row blocks, attributes.
TEST(Hdf5Rows, RowsRoundTripWithOneRowPerChunk) {
  testing::TempDir dir;
  const auto path = (dir / "r.h5").string();
  {
    RowWriter w(path);
    w.Attr("/", "format", std::string("test"));
    w.Attr("/", "n", int64_t{3});
    w.Attr("/", "n", int64_t{4});  // replaced
    w.Create("/a/f", DType::kFloat32, {3, 2}, true);
    w.Create("/a/h", DType::kFloat16, {3, 2}, true);
    w.Create("/b/d", DType::kFloat64, {3}, true);
    w.Create("/b/i", DType::kInt64, {3}, true);
    w.Create("/b/u", DType::kUInt8, {3}, true);
    w.Create("/b/s", DType::kString, {3}, true);
    w.Create("/c", DType::kFloat32, {2}, false);
    const float f[6] = {1, 2, 3, 4, 5, 0.5f};
    const double d[3] = {1.5, 2.5, 3.5};
    const int64_t i[3] = {-1, int64_t{1} << 40, 7};
    const uint8_t u[3] = {0, 200, 255};
    w.WriteRows("/a/f", 0, 3, f);
    w.WriteRows("/a/h", 1, 2, f + 2);
    w.WriteRows("/b/d", 0, 3, d);
    w.WriteRows("/b/i", 0, 3, i);
    w.WriteRows("/b/u", 0, 3, u);
    w.WriteStrings("/b/s", 0, {"x", "h\xc3\xa9", ""});
    w.WriteRows("/c", 0, 2, f);
    w.Close();
  }
  RowReader r(path);
  EXPECT_EQ(r.StringAttr("/", "format"), "test");
  EXPECT_EQ(r.IntAttr("/", "n"), 4);
  EXPECT_TRUE(r.IsStringAttr("/", "format"));
  EXPECT_FALSE(r.IsStringAttr("/", "n"));
  EXPECT_EQ(r.AttrNames("/"), (std::vector<std::string>{"format", "n"}));
  EXPECT_TRUE(r.Exists("/a/h"));
  EXPECT_FALSE(r.Exists("/x/y"));
  auto info = r.Describe("/a/h");
  EXPECT_EQ(info.dtype, DType::kFloat16);
  EXPECT_EQ(info.dims, (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(info.chunked && info.shuffle && info.deflate);
  EXPECT_EQ(info.chunk, (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(r.Describe("/c").chunked);
  EXPECT_EQ(r.Describe("/b/s").dtype, DType::kString);
  auto h = r.ReadRows("/a/h", 1, 2);
  EXPECT_EQ(h.dims, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(h.f32, (std::vector<float>{3, 4, 5, 0.5f}));  // exact in float16
  EXPECT_EQ(r.Read("/a/f").row_size(), 2);
  EXPECT_EQ(r.Read("/b/d").f64, (std::vector<double>{1.5, 2.5, 3.5}));
  EXPECT_EQ(r.Read("/b/i").i64, (std::vector<int64_t>{-1, int64_t{1} << 40, 7}));
  EXPECT_EQ(r.Read("/b/u").i64, (std::vector<int64_t>{0, 200, 255}));
  EXPECT_EQ(r.Read("/b/s").strings, (std::vector<std::string>{"x", "h\xc3\xa9", ""}));
  EXPECT_EQ(r.ReadRows("/b/s", 2, 1).strings, (std::vector<std::string>{""}));
  try {
    r.ReadRows("/a/f", 2, 2);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path);
    EXPECT_NE(std::string(e.what()).find("/a/f: rows 2..4 out of range (3 rows)"), std::string::npos) << e.what();
  }
  try {
    r.Describe("/nothing");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nothing: missing dataset"), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.IntAttr("/", "format"), InputError);
  EXPECT_THROW(RowReader((dir / "absent.h5").string()), InputError);
  EXPECT_THROW(RowWriter((dir / "no" / "dir.h5").string()), InputError);
}

TEST(Hdf5Rows, CopyRowChunksMovesStoredChunksAndRefusesOtherLayouts) {
  testing::TempDir dir;
  const auto src = (dir / "src.h5").string(), dst = (dir / "dst.h5").string();
  {
    RowWriter w(src);
    w.Create("/x", DType::kFloat32, {3, 2}, true);
    w.Create("/h", DType::kFloat16, {3, 2}, true);
    const float v[6] = {1, 2, 3, 4, 5, 6};
    w.WriteRows("/x", 0, 2, v);  // row 2 never written
    w.WriteRows("/h", 0, 3, v);
    w.Close();
  }
  RowWriter w(dst);
  w.Create("/x", DType::kFloat32, {5, 2}, true);
  w.Create("/h", DType::kFloat32, {5, 2}, true);  // another type: refused
  w.Create("/c", DType::kFloat32, {5, 2}, false);
  RowReader r(src);
  EXPECT_TRUE(w.CopyRowChunks(r, "/x", {4, 0, 2}));
  EXPECT_FALSE(w.CopyRowChunks(r, "/h", {4, 0, 2}));
  EXPECT_FALSE(w.CopyRowChunks(r, "/x", {0, 1}));  // row count differs
  w.Close();
  auto x = RowReader(dst).Read("/x").f32;
  ASSERT_EQ(x.size(), 10u);
  EXPECT_EQ(std::vector<float>(x.begin(), x.begin() + 2), (std::vector<float>{3, 4}));  // row 1 of src
  EXPECT_EQ(std::vector<float>(x.begin() + 8, x.end()), (std::vector<float>{1, 2}));   // row 0 of src
  EXPECT_EQ(x[4], 0.f);  // src row 2 had no chunk: the fill value
  EXPECT_EQ(x[2], 0.f);
}

// Virtual and concatenated datasets over the rows of several files (what merge builds).
TEST(Hdf5Rows, VirtualAndConcatenatedDatasetsOverSources) {
  testing::TempDir dir;
  std::vector<RowSource> sources;
  int64_t total = 0;
  for (int k = 0; k < 2; ++k) {
    const auto p = (dir / ("s" + std::to_string(k) + ".h5")).string();
    RowWriter w(p);
    w.Attr("/", "shard", int64_t{k});
    w.Group("/topology");
    w.Create("/topology/t", DType::kInt64, {2}, false);
    const int64_t t[2] = {5, 6};
    w.WriteRows("/topology/t", 0, 2, t);
    const int64_t rows = k + 1;
    w.Create("/v/f", DType::kFloat32, {rows, 2}, true);
    w.Create("/v/s", DType::kString, {rows}, true);
    const float f[4] = {10.f * k, 10.f * k + 1, 10.f * k + 2, 10.f * k + 3};
    w.WriteRows("/v/f", 0, rows, f);
    w.WriteStrings("/v/s", 0, std::vector<std::string>(rows, "s" + std::to_string(k)));
    w.Close();
    sources.push_back({p, "s" + std::to_string(k) + ".h5", total, rows});
    total += rows;
  }
  RowReader first(sources[0].path);
  for (bool copy : {false, true}) {
    const auto out = (dir / (copy ? "copy.h5" : "virtual.h5")).string();
    {
      RowWriter w(out, /*hdf5_1_8_format=*/false);
      w.CopyRootAttributes(first);
      w.Attr("/", "shard", int64_t{-1});
      w.CopyObject(first, "/topology");
      for (const char* path : {"/v/f", "/v/s"}) {
        if (copy) w.CreateConcatenated(path, first, sources, total);
        else w.CreateVirtual(path, first, sources, total);
      }
      w.Close();
    }
    RowReader r(out);
    EXPECT_EQ(r.IntAttr("/", "shard"), -1);
    EXPECT_EQ(r.Read("/topology/t").i64, (std::vector<int64_t>{5, 6}));
    EXPECT_EQ(r.Read("/v/f").f32, (std::vector<float>{0, 1, 10, 11, 12, 13}));
    EXPECT_EQ(r.Read("/v/s").strings, (std::vector<std::string>{"s0", "s1", "s1"}));
    EXPECT_EQ(r.Describe("/v/f").chunked, copy);
  }
  RowWriter w((dir / "bad.h5").string(), false);
  try {
    w.CreateVirtual("/v/none", first, sources, total);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), sources[0].path);
    EXPECT_NE(std::string(e.what()).find("/v/none: missing dataset"), std::string::npos) << e.what();
  }
}

TEST(Hdf5Rows, AtomicRenameReplacesTheTarget) {
  testing::TempDir dir;
  const auto tmp = (dir / "a.tmp").string(), final_path = (dir / "a.txt").string();
  testing::WriteFile(tmp, "new");
  testing::WriteFile(final_path, "old");
  AtomicRename(tmp, final_path);
  EXPECT_EQ(testing::ReadFile(final_path), "new");
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_THROW(AtomicRename(tmp, final_path), InputError);
  EXPECT_THROW(SyncPath((dir / "absent").string()), InputError);
}

}  // namespace
}  // namespace facebatch::io::hdf5
