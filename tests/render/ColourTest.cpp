// The sRGB transfer function on tensors and linear renders as 8-bit pictures (render/Colour.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/Colour.h"
#include "render/Colour.h"

namespace facebatch::render {
namespace {

TEST(Colour, TensorTransferMatchesTheScalarOneAndRoundTrips) {
  auto v = torch::linspace(0, 1, 1001, torch::kFloat64);
  auto lin = SrgbToLinear(v), enc = LinearToSrgb(v);
  for (int64_t i = 0; i < v.size(0); i += 37) {
    EXPECT_NEAR(lin[i].item<double>(), facebatch::SrgbToLinear(v[i].item<double>()), 1e-12);
    EXPECT_NEAR(enc[i].item<double>(), facebatch::LinearToSrgb(v[i].item<double>()), 1e-12);
  }
  EXPECT_TRUE(torch::allclose(LinearToSrgb(SrgbToLinear(v)), v, 0, 1e-12));
  // clamped outside [0, 1]; the gradient is finite everywhere, 12.92 on the linear segment at 0
  auto x = torch::tensor({-0.5, 0.0, 0.5, 1.5}, torch::TensorOptions().dtype(torch::kFloat64).requires_grad(true));
  auto y = LinearToSrgb(x);
  EXPECT_DOUBLE_EQ(y[0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(y[3].item<double>(), 1.0);
  y.sum().backward();
  EXPECT_TRUE(torch::isfinite(x.grad()).all().item<bool>());
  EXPECT_NEAR(x.grad()[1].item<double>(), 12.92, 1e-9);
}

TEST(Colour, LinearRenderBecomesAnSrgbBgrPicture) {
  auto rgb = torch::zeros({3, 2, 2});
  rgb[0].fill_(0.2158605f);  // R: the linear value of byte 128
  rgb[2][0][0] = 1.f;       // B at (0, 0)
  const cv::Mat m = LinearRgbToSrgbBgr8(rgb);
  ASSERT_EQ(m.type(), CV_8UC3);
  ASSERT_EQ(m.rows, 2);
  EXPECT_EQ(m.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 128));
  EXPECT_EQ(m.at<cv::Vec3b>(1, 1), cv::Vec3b(0, 0, 128));
}

}  // namespace
}  // namespace facebatch::render
