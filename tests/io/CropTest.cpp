#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <random>

#include "io/Crop.h"
#include "io/Landmarks.h"

namespace facebatch::io {
namespace {

// A crop-space test pattern: smooth, so bilinear resampling errors stay small.
cv::Mat Pattern(int size) {
  cv::Mat p(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      p.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(128 + 100 * std::sin(x * 0.05)),
                                        static_cast<uchar>(128 + 100 * std::cos(y * 0.04)),
                                        static_cast<uchar>((x + y) / 2 % 256));
  return p;
}

TEST(Crop, RecoversAKnownSimilarity) {
  std::mt19937_64 rng(5);
  for (LandmarkConvention conv : {LandmarkConvention::kIbug68, LandmarkConvention::kFive}) {
    for (int trial = 0; trial < 5; ++trial) {
      // Ground truth: crop -> original is rotation theta, scale s, translation t.
      double theta = (static_cast<double>(rng() % 1000) / 1000.0 - 0.5) * 1.2;
      double s = 1.2 + (rng() % 1000) / 1000.0 * 1.5;
      double c = s * std::cos(theta), sn = s * std::sin(theta), m = (kCropSize - 1) / 2.0;
      // Crop centre lands near (500, 500) of a 1000 x 1000 original: the whole crop is inside it.
      double tx = 500 + (rng() % 40) - (c * m - sn * m), ty = 500 + (rng() % 40) - (sn * m + c * m);
      cv::Matx23d c2o(c, -sn, tx, sn, c, ty);
      cv::Matx23d o2c = InvertAffine(c2o);
      // The original image: the pattern placed by c2o (so cropping must undo it).
      cv::Mat pattern = Pattern(kCropSize);
      cv::Mat original;
      cv::warpAffine(pattern, original, cv::Mat(o2c), cv::Size(1000, 1000), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                     cv::BORDER_CONSTANT);
      Landmarks lm;
      lm.convention = conv;
      for (const Point2& p : CropTemplate(conv)) lm.points.push_back(Apply(c2o, p));
      Crop crop = CropFace(original, lm);
      for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 3; ++k) {
          EXPECT_NEAR(crop.crop_to_original(r, k), c2o(r, k), 1e-8);
          EXPECT_NEAR(crop.original_to_crop(r, k), o2c(r, k), 1e-8);
        }
      EXPECT_NEAR(crop.scale, 1.0 / s, 1e-9);
      auto tmpl = CropTemplate(conv);
      for (size_t i = 0; i < tmpl.size(); ++i) {
        EXPECT_NEAR(crop.landmarks.points[i].x, tmpl[i].x, 1e-8);
        EXPECT_NEAR(crop.landmarks.points[i].y, tmpl[i].y, 1e-8);
      }
      // The crop reproduces the pattern (interior; two bilinear resamplings).
      cv::Mat diff;
      cv::absdiff(crop.image(cv::Rect(10, 10, 204, 204)), pattern(cv::Rect(10, 10, 204, 204)), diff);
      cv::Scalar mean = cv::mean(diff);
      EXPECT_LT(mean[0] + mean[1] + mean[2], 3 * 4.0) << "theta " << theta << " s " << s;
    }
  }
}

TEST(Crop, LeastSquaresWithNoise) {
  // Noisy correspondences: the estimate is close to the truth and beats a perturbed one.
  std::mt19937_64 rng(9);
  std::vector<Point2> src = CanonicalFace68(), dst;
  cv::Matx23d truth(0.8, -0.6, 10, 0.6, 0.8, -5);
  std::normal_distribution<double> noise(0, 0.01);
  for (const Point2& p : src) {
    Point2 q = Apply(truth, p);
    dst.push_back({q.x + noise(rng), q.y + noise(rng)});
  }
  cv::Matx23d est = EstimateSimilarity(src, dst);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(est(r, c), truth(r, c), 0.01);
  auto cost = [&](const cv::Matx23d& m) {
    double e = 0;
    for (size_t i = 0; i < src.size(); ++i) {
      Point2 q = Apply(m, src[i]);
      e += (q.x - dst[i].x) * (q.x - dst[i].x) + (q.y - dst[i].y) * (q.y - dst[i].y);
    }
    return e;
  };
  cv::Matx23d perturbed = est;
  perturbed(0, 2) += 0.01;
  EXPECT_LT(cost(est), cost(perturbed));
  // Inverse composes to identity.
  Point2 p{3.5, -7.25};
  Point2 back = Apply(InvertAffine(est), Apply(est, p));
  EXPECT_NEAR(back.x, p.x, 1e-12);
  EXPECT_NEAR(back.y, p.y, 1e-12);
}

TEST(Crop, CanonicalFaceIsMirrorSymmetric) {
  auto p = CanonicalFace68();
  const auto& perm = Ibug68FlipPermutation();
  for (int i = 0; i < 68; ++i) {
    EXPECT_NEAR(p[i].x, -p[perm[i]].x, 1e-12) << i;
    EXPECT_NEAR(p[i].y, p[perm[i]].y, 1e-12) << i;
    EXPECT_EQ(perm[perm[i]], i);
  }
  // Template fits inside the crop.
  for (const Point2& q : CropTemplate(LandmarkConvention::kIbug68)) {
    EXPECT_GT(q.x, 0);
    EXPECT_LT(q.x, kCropSize - 1);
    EXPECT_GT(q.y, 0);
    EXPECT_LT(q.y, kCropSize - 1);
  }
}

}  // namespace
}  // namespace facebatch::io
