// render::WritePng (OpenCV's encoder): the file decodes to the sRGB-encoded pixels of a linear
// image, or to the values as they are with srgb = false; a bad path is an InputError naming it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>

#include "TestSupport.h"
#include "core/Error.h"
#include "render/Png.h"

namespace facebatch::render {
namespace {

TEST(WritePng, DecodesToTheEncodedPixels) {
  testing::TempDir dir;
  // A 2 x 3 image: red, green, blue, black, white, linear mid grey.
  auto img = torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.214f,  //
                            0.f, 1.f, 0.f, 0.f, 1.f, 0.214f,  //
                            0.f, 0.f, 1.f, 0.f, 1.f, 0.214f})
                 .view({3, 2, 3});
  const auto path = (dir.path() / "a.png").string();
  WritePng(path, img);
  cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(m.type(), CV_8UC3);
  ASSERT_EQ(m.rows, 2);
  ASSERT_EQ(m.cols, 3);
  EXPECT_EQ(m.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));  // BGR: red
  EXPECT_EQ(m.at<cv::Vec3b>(0, 2), cv::Vec3b(255, 0, 0));  // blue
  EXPECT_EQ(m.at<cv::Vec3b>(1, 1), cv::Vec3b(255, 255, 255));
  // Linear 0.214 is sRGB 0.5 (128 of 255); written raw it is 55.
  EXPECT_NEAR(m.at<cv::Vec3b>(1, 2)[1], 128, 1);
  WritePng(path, img, /*srgb=*/false);
  EXPECT_EQ(cv::imread(path, cv::IMREAD_UNCHANGED).at<cv::Vec3b>(1, 2)[1], 55);
  try {
    WritePng((dir.path() / "missing" / "b.png").string(), img);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("b.png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WritePng(path, torch::zeros({2, 2})), Error);
}

}  // namespace
}  // namespace facebatch::render
