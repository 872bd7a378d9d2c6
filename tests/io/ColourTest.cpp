// The model's input convention: 8-bit sRGB pixels decoded to linear RGB (core/Colour.h).
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include "core/Colour.h"
#include "core/Error.h"
#include "io/Image.h"

namespace facebatch::io {
namespace {

TEST(Colour, ScalarTransferFunctionKnownValuesAndRoundTrip) {
  EXPECT_DOUBLE_EQ(SrgbToLinear(0.0), 0.0);
  EXPECT_DOUBLE_EQ(SrgbToLinear(1.0), 1.0);
  EXPECT_NEAR(SrgbToLinear(0.5), 0.214041, 1e-6);        // mid grey
  EXPECT_NEAR(SrgbToLinear(0.04), 0.04 / 12.92, 1e-12);   // the linear segment
  EXPECT_NEAR(LinearToSrgb(0.214041), 0.5, 1e-6);
  EXPECT_DOUBLE_EQ(LinearToSrgb(2.0), 1.0);  // clamped
  EXPECT_DOUBLE_EQ(LinearToSrgb(-1.0), 0.0);
  for (int i = 0; i <= 100; ++i) EXPECT_NEAR(LinearToSrgb(SrgbToLinear(i / 100.0)), i / 100.0, 1e-12);
}

TEST(Colour, BgrToLinearRgbDecodesEveryByteAndSwapsChannels) {
  cv::Mat bgr(1, 256, CV_8UC3);
  for (int i = 0; i < 256; ++i) bgr.at<cv::Vec3b>(0, i) = cv::Vec3b(uchar(i), uchar(255 - i), 0);
  const cv::Mat rgb = BgrToLinearRgb(bgr);
  ASSERT_EQ(rgb.type(), CV_32FC3);
  for (int i = 0; i < 256; ++i) {
    const auto p = rgb.at<cv::Vec3f>(0, i);
    EXPECT_FLOAT_EQ(p[0], 0.f);                                                 // R from the third byte
    EXPECT_FLOAT_EQ(p[1], static_cast<float>(SrgbToLinear((255 - i) / 255.0)));  // G
    EXPECT_FLOAT_EQ(p[2], static_cast<float>(SrgbToLinear(i / 255.0)));          // B from the first byte
  }
  EXPECT_NEAR(rgb.at<cv::Vec3f>(0, 128)[2], 0.2158605, 1e-6);  // byte 128 is not 0.5 in linear light
  EXPECT_THROW(BgrToLinearRgb(cv::Mat(2, 2, CV_8UC1)), Error);
}

}  // namespace
}  // namespace facebatch::io
