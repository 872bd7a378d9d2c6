#include "io/Detect.h"

#include <algorithm>
#include <filesystem>

#include "core/Error.h"

#ifdef FACEBATCH_WITH_DLIB
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv.h>
#endif

namespace facebatch::io {

bool DlibAvailable() {
#ifdef FACEBATCH_WITH_DLIB
  return true;
#else
  return false;
#endif
}

#ifdef FACEBATCH_WITH_DLIB
struct FaceDetector::Impl {
  dlib::shape_predictor predictor;
};

FaceDetector::FaceDetector(const std::string& shape_predictor) : impl_(new Impl) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(shape_predictor, ec)) {
    delete impl_;
    throw InputError(shape_predictor, "dlib shape predictor model is missing (Debian package libdlib-data)");
  }
  try {
    dlib::deserialize(shape_predictor) >> impl_->predictor;
  } catch (const std::exception& e) {
    delete impl_;
    throw InputError(shape_predictor, std::string("cannot load the dlib shape predictor: ") + e.what());
  }
}

FaceDetector::~FaceDetector() { delete impl_; }

std::vector<DetectedFace> FaceDetector::Detect(const cv::Mat& bgr) const {
  thread_local dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  cv::Mat img = bgr;
  if (!img.isContinuous()) img = img.clone();
  dlib::cv_image<dlib::bgr_pixel> view(img);
  std::vector<dlib::rect_detection> dets;
  detector(view, dets, 0.0);
  std::vector<DetectedFace> faces;
  for (const auto& d : dets) {
    DetectedFace f;
    const dlib::rectangle& r = d.rect;
    f.bbox = {double(r.left()), double(r.top()), double(r.right()), double(r.bottom())};
    f.score = d.detection_confidence;
    dlib::full_object_detection shape = impl_->predictor(view, r);
    f.landmarks.convention = LandmarkConvention::kIbug68;
    f.landmarks.origin = 0;
    for (unsigned long i = 0; i < shape.num_parts(); ++i)
      f.landmarks.points.push_back({double(shape.part(i).x()), double(shape.part(i).y())});
    faces.push_back(std::move(f));
  }
  std::sort(faces.begin(), faces.end(), [](const DetectedFace& a, const DetectedFace& b) {
    return a.bbox[0] != b.bbox[0] ? a.bbox[0] < b.bbox[0] : a.bbox[1] < b.bbox[1];
  });
  return faces;
}
#else
struct FaceDetector::Impl {};
FaceDetector::FaceDetector(const std::string&) : impl_(nullptr) {
  throw Error("--detect dlib: this facebatch was built without dlib (FACEBATCH_WITH_DLIB=OFF)");
}
FaceDetector::~FaceDetector() = default;
std::vector<DetectedFace> FaceDetector::Detect(const cv::Mat&) const { return {}; }
#endif

}  // namespace facebatch::io
