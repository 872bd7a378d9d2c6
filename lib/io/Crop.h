#pragma once
// Face crops: the model's input (paper section 3: 224 x 224 input images).
//
// A crop is the image warped by the similarity transform T (rotation, uniform
// scale, translation; no reflection) that maps the item's landmarks onto a
// canonical landmark template in least squares (Umeyama 1991, in 2-D closed form).
// Coordinates follow the facebatch convention (pixel centres at integers, x right,
// y down) in both images, which is what cv::warpAffine assumes, so
//   crop(x', y') = original(T^-1 (x', y')).
// Transforms are 2x3 matrices [a -b tx; b a ty] acting on column vectors (x, y, 1).
#include <opencv2/core.hpp>

#include <vector>

#include "io/Item.h"

namespace facebatch::io {

inline constexpr int kCropSize = 224;

/// The template that landmarks are aligned to, in pixels of a size x size crop:
/// CanonicalFace68() scaled by 80/224*size and centred at (size-1)/2, (size-1)/2 - 8/224*size,
/// which leaves the forehead and chin inside. For kFive: FiveFrom68 of that.
std::vector<Point2> CropTemplate(LandmarkConvention convention, int size = kCropSize);

/// Least-squares similarity (no reflection) taking src[i] to dst[i]; needs >= 2
/// distinct points. Throws Error for degenerate input.
cv::Matx23d EstimateSimilarity(const std::vector<Point2>& src, const std::vector<Point2>& dst);
cv::Matx23d InvertAffine(const cv::Matx23d& m);
Point2 Apply(const cv::Matx23d& m, const Point2& p);

struct Crop {
  cv::Mat image;                 ///< size x size, 8-bit BGR (io::BgrToLinearRgb for the model)
  Landmarks landmarks;           ///< the item's landmarks in crop coordinates
  cv::Matx23d original_to_crop;  ///< T
  cv::Matx23d crop_to_original;  ///< T^-1 (puts crop-space results back into the image)
  double scale = 1;              ///< crop pixels per original pixel
};

/// Crops `bgr` (8-bit BGR) around the face given by `landmarks` (68 iBUG or 5
/// points). Outside the image the crop is black (BORDER_CONSTANT), bilinear
/// interpolation. Throws Error without landmarks or with NaN coordinates.
Crop CropFace(const cv::Mat& bgr, const Landmarks& landmarks, int size = kCropSize);

}  // namespace facebatch::io
