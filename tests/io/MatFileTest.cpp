#include <gtest/gtest.h>
#include <matio.h>

#include <fstream>
#include <random>

#include "TestSupport.h"
#include "core/Error.h"
#include "io/MatFile.h"

namespace facebatch::io {
namespace {
using facebatch::testing::TempDir;

TEST(MatFile, RoundTripsEveryNumericClass) {
  TempDir dir;
  const std::string path = (dir / "all.mat").string();
  const char* classes[] = {"double", "single", "int8", "uint8", "int16", "uint16",
                           "int32", "uint32", "int64", "uint64", "logical"};
  std::mt19937_64 rng(7);
  std::map<std::string, MatArray> written;
  {
    MatWriter w(path);
    for (const char* c : classes) {
      std::string cls = c;
      MatArray a;
      a.dims = {3, 5};
      a.mat_class = cls;
      for (int i = 0; i < 15; ++i) {
        double v = static_cast<double>(rng() % 100);
        if (cls == "double") v = (static_cast<double>(rng() % 100000) - 50000) / 7.0;
        if (cls == "single") v = static_cast<float>((static_cast<double>(rng() % 1000) - 500) / 3.0);
        if (cls[0] == 'i') v -= 50;  // negative values for signed classes
        if (cls == "logical") v = static_cast<double>(rng() % 2);
        a.values.push_back(v);
      }
      w.Write("v_" + cls, a);
      written["v_" + cls] = a;
    }
  }
  MatFile f(path);
  EXPECT_EQ(f.VariableNames().size(), std::size(classes));
  for (const auto& [name, a] : written) {
    MatArray r = f.Read(name);
    EXPECT_EQ(r.dims, a.dims) << name;
    EXPECT_EQ(r.mat_class, a.mat_class) << name;
    ASSERT_EQ(r.values.size(), a.values.size()) << name;
    for (size_t i = 0; i < a.values.size(); ++i) EXPECT_EQ(r.values[i], a.values[i]) << name << " " << i;
  }
}

TEST(MatFile, WritesMatlabV5WithCompressedVariables) {
  TempDir dir;
  const std::string path = (dir / "v5.mat").string();
  {
    MatWriter w(path);
    w.Write("Pose_Para", MakeMatArray(1, 7, {1, 2, 3, 4, 5, 6, 7}, "single"));
  }
  std::string bytes = facebatch::testing::ReadFile(path);
  ASSERT_GT(bytes.size(), 136u);
  EXPECT_EQ(bytes.substr(0, 19), "MATLAB 5.0 MAT-file");
  EXPECT_EQ(static_cast<unsigned char>(bytes[126]), 'I');  // little-endian indicator "IM"
  EXPECT_EQ(static_cast<unsigned char>(bytes[127]), 'M');
  EXPECT_EQ(bytes[124], 0x00);  // version 0x0100
  EXPECT_EQ(bytes[125], 0x01);
  EXPECT_EQ(static_cast<unsigned char>(bytes[128]), 15);  // first data element: miCOMPRESSED
  MatFile f(path);
  EXPECT_EQ(f.Read("Pose_Para").mat_class, "single");
}

TEST(MatFile, ColumnMajorAndShapes) {
  TempDir dir;
  const std::string path = (dir / "pt.mat").string();
  {
    MatWriter w(path);
    w.Write("pt2d", MakeMatArray(2, 3, {1, 2, 3, 10, 20, 30}));  // row 0 = x, row 1 = y
  }
  MatFile f(path);
  MatArray a = f.ReadShape("pt2d", 2, 3);
  EXPECT_EQ(a.at(0, 1), 2);
  EXPECT_EQ(a.at(1, 2), 30);
  EXPECT_EQ(a.values[1], 10);  // column-major: (1, 0) is the second value
  MatArray t = f.ReadShape("pt2d", 3, 2, /*allow_transpose=*/true);
  EXPECT_EQ(t.rows(), 3u);
  EXPECT_EQ(t.at(2, 1), 30);
  try {
    f.ReadShape("pt2d", 2, 68);
    FAIL() << "wrong shape accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.path(), path);
    EXPECT_NE(std::string(e.what()).find("'pt2d' has shape 2x3, expected 2x68"), std::string::npos) << e.what();
  }
}

TEST(MatFile, ClearErrors) {
  TempDir dir;
  const std::string path = (dir / "x.mat").string();
  {
    MatWriter w(path);
    w.Write("a", MakeMatArray(1, 2, {1, 2}));
  }
  {  // a char variable (non-numeric), written with matio directly
    mat_t* m = Mat_Open(path.c_str(), MAT_ACC_RDWR);
    ASSERT_NE(m, nullptr);
    size_t dims[2] = {1, 5};
    char text[] = "hello";
    matvar_t* v = Mat_VarCreate("name", MAT_C_CHAR, MAT_T_UINT8, 2, dims, text, 0);
    ASSERT_EQ(Mat_VarWrite(m, v, MAT_COMPRESSION_ZLIB), 0);
    Mat_VarFree(v);
    Mat_Close(m);
  }
  MatFile f(path);
  auto message = [&](const std::string& var) {
    try {
      f.Read(var);
    } catch (const InputError& e) {
      EXPECT_EQ(e.path(), path);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("missing").find("variable 'missing' is missing"), std::string::npos);
  EXPECT_NE(message("name").find("'name' is not a numeric array (it is char)"), std::string::npos) << message("name");

  // Missing file, not a MAT file, corrupt compressed data.
  EXPECT_THROW(MatFile((dir / "none.mat").string()), InputError);
  facebatch::testing::WriteFile(dir / "text.mat", "this is not a mat file at all, just some text that is long enough "
                                                  "to fill a MAT header of 128 bytes ...........................");
  try {
    MatFile bad((dir / "text.mat").string());
    FAIL() << "text accepted as MAT";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("text.mat"), std::string::npos);
  }
  {
    MatWriter w((dir / "big.mat").string());
    std::vector<double> v(4000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(i * 0.37) * 1000;
    w.Write("big", MakeMatArray(1, v.size(), v));
  }
  std::string bytes = facebatch::testing::ReadFile(dir / "big.mat");
  for (size_t i = 200; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);  // scramble the zlib stream
  facebatch::testing::WriteFile(dir / "corrupt.mat", bytes);
  bool threw = false;
  try {
    MatFile c((dir / "corrupt.mat").string());
    c.Read("big");
  } catch (const InputError& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find("corrupt.mat"), std::string::npos);
  }
  EXPECT_TRUE(threw) << "corrupt compressed data was read without error";
}

}  // namespace
}  // namespace facebatch::io
