#pragma once
// One face item of a corpus, as the manifest records it.
//
// Coordinates (all modules): x to the right, y down, in pixels; the origin is the
// CENTRE of the top-left pixel (pixel row i, column j has its centre at (x=j, y=i)),
// as OpenCV's warpAffine/remap assume. A corpus whose files use another origin
// (e.g. MATLAB's 1-based pixels) is converted on reading: the reader subtracts the
// item's `landmark_origin` (0 or 1) from every file coordinate.
#include <map>
#include <string>
#include <vector>

#include "io/MatFile.h"

namespace facebatch::io {

/// Which points a landmark set holds, in which order.
enum class LandmarkConvention {
  kNone,     ///< no landmarks
  kIbug68,   ///< 68 points, iBUG / Multi-PIE order (0-16 jaw, 17-26 brows, 27-35 nose,
             ///< 36-41 image-left eye, 42-47 image-right eye, 48-67 mouth)
  kFive,     ///< 5 points: left eye centre, right eye centre, nose tip, left mouth
             ///< corner, right mouth corner ("left" = image left, as CelebA)
};
const char* ToString(LandmarkConvention c);       ///< "none", "ibug68", "five"
LandmarkConvention ParseLandmarkConvention(const std::string& s);  ///< throws Error
int PointCount(LandmarkConvention c);             ///< 0, 68, 5

struct Point2 {
  double x = 0, y = 0;
};

struct Landmarks {
  LandmarkConvention convention = LandmarkConvention::kNone;
  std::vector<Point2> points;  ///< in facebatch coordinates (origin: centre of the top-left pixel)
  int origin = 0;  ///< origin of the SOURCE file's coordinates that was subtracted on reading
  bool empty() const { return points.empty(); }
};

/// The five points of a 68-point set (eye centres = mean of the eye contours,
/// nose tip = point 30, mouth corners = points 48 and 54).
Landmarks FiveFrom68(const Landmarks& l68);

enum class ItemStatus { kOk, kFailed };
const char* ToString(ItemStatus s);  ///< "ok", "failed"

/// Machine-readable reasons for a failed item (the manifest also keeps a message).
namespace reason {
inline constexpr const char* kMissingImage = "missing_image";
inline constexpr const char* kCorruptImage = "corrupt_image";
inline constexpr const char* kImageTooLarge = "image_too_large";
inline constexpr const char* kMissingMetadata = "missing_metadata";   ///< .mat / landmark file absent
inline constexpr const char* kBadMetadata = "bad_metadata";           ///< variable missing/wrong shape/corrupt
inline constexpr const char* kBadLandmarks = "bad_landmarks";         ///< NaN, short rows, wrong count
inline constexpr const char* kNoFace = "no_face";                     ///< detector found nothing
inline constexpr const char* kNoLandmarks = "no_landmarks";           ///< folder image without landmarks
inline constexpr const char* kError = "error";                        ///< anything unexpected
}  // namespace reason

struct Item {
  std::string id;          ///< "<corpus>/<relative path without extension>" [+ "#k" for face k>0]
  std::string image;       ///< image path relative to the corpus root ('/' separators)
  int width = 0, height = 0;  ///< of the image file, pixels (0 if it could not be read)
  int face = 0;            ///< index of the face in the image (detected faces)
  Landmarks landmarks;
  std::vector<double> bbox;  ///< optional face box [x0, y0, x1, y1] (facebatch coordinates)
  /// Ground truth from the corpus (e.g. "Pose_Para", "Shape_Para", "pt3d_68", "roi"),
  /// numbers exactly as stored (column-major, with MATLAB class and dims).
  std::map<std::string, MatArray> ground_truth;
  std::string partition;   ///< "train", "val", "test" or "" when unknown
  long identity = -1;      ///< corpus identity label, -1 when unknown
  std::string corpus;      ///< source corpus: "300w-lp", "aflw2000", "celeba", "folder"
  std::string subset;      ///< e.g. "AFW_Flip" for 300W-LP, "" otherwise
  ItemStatus status = ItemStatus::kOk;
  std::string reason_code; ///< one of io::reason::k*, "" when ok
  std::string reason;      ///< human message naming the file and the problem, "" when ok

  bool ok() const { return status == ItemStatus::kOk; }
  void Fail(const std::string& code, const std::string& message) {
    status = ItemStatus::kFailed;
    reason_code = code;
    reason = message;
  }
};

}  // namespace facebatch::io
