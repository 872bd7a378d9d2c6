#include <gtest/gtest.h>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/Hdf5.h"

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

}  // namespace
}  // namespace facebatch::io::hdf5
