#include <gtest/gtest.h>

#include <filesystem>

#include "TestSupport.h"

namespace facebatch {
namespace {
using testing::ReadFile;
using testing::RunCli;
using testing::TempDir;

TEST(RenderTemplateCli, WritesPngs) {
  TempDir dir;
  auto r = RunCli({"render-template", "--out", (dir / "out").string(), "--uv-rows", "48", "--uv-cols", "56",
                   "--size", "64", "--yaws", "-60,0", "--lights", "front,ambient"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"template_yaw-60_front.png", "template_yaw+0_ambient.png", "template_sheet.png",
                           "template_uv_albedo.png", "template_uv_shape.png"}) {
    const auto path = dir / "out" / name;
    ASSERT_TRUE(std::filesystem::exists(path)) << name << "\n" << r.output;
    const auto bytes = ReadFile(path);
    ASSERT_GT(bytes.size(), 100u);
    EXPECT_EQ(bytes.substr(1, 3), "PNG");
  }
}

TEST(RenderTemplateCli, BadOptionsAreUsageErrors) {
  TempDir dir;
  auto r = RunCli({"render-template", "--out", dir.path().string(), "--lights", "disco"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("disco"), std::string::npos) << r.output;
  auto r2 = RunCli({"render-template"});
  EXPECT_EQ(r2.exit_code, 2) << r2.output;
  EXPECT_NE(r2.output.find("--out"), std::string::npos) << r2.output;
  auto r3 = RunCli({"render-template", "--out", dir.path().string(), "--yaws", "120"});
  EXPECT_EQ(r3.exit_code, 2) << r3.output;
}

}  // namespace
}  // namespace facebatch
