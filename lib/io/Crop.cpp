#include "io/Crop.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/Error.h"
#include "io/Landmarks.h"

namespace facebatch::io {

std::vector<Point2> CropTemplate(LandmarkConvention convention, int size) {
  const double s = 80.0 / 224.0 * size;
  const double cx = (size - 1) / 2.0, cy = (size - 1) / 2.0 - 8.0 / 224.0 * size;
  Landmarks l;
  l.convention = LandmarkConvention::kIbug68;
  for (const Point2& p : CanonicalFace68()) l.points.push_back({cx + s * p.x, cy + s * p.y});
  if (convention == LandmarkConvention::kIbug68) return l.points;
  if (convention == LandmarkConvention::kFive) return FiveFrom68(l).points;
  throw Error("CropTemplate: no template for landmark convention 'none'");
}

cv::Matx23d EstimateSimilarity(const std::vector<Point2>& src, const std::vector<Point2>& dst) {
  if (src.size() != dst.size() || src.size() < 2) throw Error("EstimateSimilarity: need >= 2 point pairs");
  const double n = static_cast<double>(src.size());
  Point2 ms, md;
  for (size_t i = 0; i < src.size(); ++i) {
    ms.x += src[i].x / n; ms.y += src[i].y / n;
    md.x += dst[i].x / n; md.y += dst[i].y / n;
  }
  // Minimise sum |[a -b; b a] s_i + t - d_i|^2 over centred points: the 2-D form of
  // Umeyama's solution, a = sum(s.d)/sum|s|^2, b = sum(s x d)/sum|s|^2.
  double ss = 0, dot = 0, cross = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    double sx = src[i].x - ms.x, sy = src[i].y - ms.y;
    double dx = dst[i].x - md.x, dy = dst[i].y - md.y;
    ss += sx * sx + sy * sy;
    dot += sx * dx + sy * dy;
    cross += sx * dy - sy * dx;
  }
  if (!(ss > 1e-12) || !std::isfinite(ss)) throw Error("EstimateSimilarity: source points are degenerate");
  double a = dot / ss, b = cross / ss;
  double tx = md.x - (a * ms.x - b * ms.y), ty = md.y - (b * ms.x + a * ms.y);
  return cv::Matx23d(a, -b, tx, b, a, ty);
}

cv::Matx23d InvertAffine(const cv::Matx23d& m) {
  double det = m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0);
  if (std::abs(det) < 1e-15) throw Error("InvertAffine: singular transform");
  double i00 = m(1, 1) / det, i01 = -m(0, 1) / det, i10 = -m(1, 0) / det, i11 = m(0, 0) / det;
  return cv::Matx23d(i00, i01, -(i00 * m(0, 2) + i01 * m(1, 2)), i10, i11, -(i10 * m(0, 2) + i11 * m(1, 2)));
}

Point2 Apply(const cv::Matx23d& m, const Point2& p) {
  return {m(0, 0) * p.x + m(0, 1) * p.y + m(0, 2), m(1, 0) * p.x + m(1, 1) * p.y + m(1, 2)};
}

Crop CropFace(const cv::Mat& bgr, const Landmarks& landmarks, int size) {
  if (landmarks.convention == LandmarkConvention::kNone || landmarks.points.empty())
    throw Error("CropFace: the item has no landmarks");
  if (static_cast<int>(landmarks.points.size()) != PointCount(landmarks.convention))
    throw Error("CropFace: landmark count does not match the convention");
  for (const Point2& p : landmarks.points)
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) throw Error("CropFace: NaN landmark coordinate");
  Crop c;
  c.original_to_crop = EstimateSimilarity(landmarks.points, CropTemplate(landmarks.convention, size));
  c.crop_to_original = InvertAffine(c.original_to_crop);
  c.scale = std::hypot(c.original_to_crop(0, 0), c.original_to_crop(1, 0));
  cv::warpAffine(bgr, c.image, cv::Mat(c.original_to_crop), cv::Size(size, size), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar::all(0));
  c.landmarks = landmarks;
  c.landmarks.origin = 0;
  for (Point2& p : c.landmarks.points) p = Apply(c.original_to_crop, p);
  return c;
}

}  // namespace facebatch::io
