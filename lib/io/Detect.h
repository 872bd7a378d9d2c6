#pragma once
// Face detection for folder corpora without landmark files (`--detect dlib`):
// dlib's HOG frontal face detector + its 68-point shape predictor (iBUG order).
#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "io/Item.h"

namespace facebatch::io {

inline constexpr const char* kDefaultShapePredictor =
    "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

struct DetectedFace {
  std::vector<double> bbox;  ///< [x0, y0, x1, y1], facebatch coordinates
  Landmarks landmarks;       ///< 68 iBUG points, origin 0
  double score = 0;          ///< detector confidence
};

/// True when facebatch was built with dlib (FACEBATCH_WITH_DLIB).
bool DlibAvailable();

/// Thread-safe detector: the shape predictor is loaded once and shared; each
/// thread uses its own HOG detector. Faces are returned left to right (then top to
/// bottom) so that "#k" ids are deterministic.
class FaceDetector {
 public:
  /// Throws Error when dlib is not built in, InputError when the model file is bad.
  explicit FaceDetector(const std::string& shape_predictor = kDefaultShapePredictor);
  ~FaceDetector();
  std::vector<DetectedFace> Detect(const cv::Mat& bgr) const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace facebatch::io
