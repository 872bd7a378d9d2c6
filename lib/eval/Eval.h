#pragma once
// `facebatch eval`: the paper's metrics (section 4; metrics/Metrics.h) over fit
// outputs (shard files or a merged file, schemas/shard.md), per image and
// summarised overall and by absolute-yaw bin. See docs/eval.md.
//
// Per ok image:
//  - l21: Table 1's error between I(S, A) re-rendered from /maps/shape,
//    /maps/albedo, /latents/projection, /latents/lighting (render module) and the
//    model's input crop (the original image re-cropped with the inverse of
//    /images/crop_to_original), over the rendered face mask; images in [0, 1].
//  - nme_io, nme_bbox: landmark NME of the fit's 68 landmark vertices (projected
//    by M, mapped into the original image) against the ground truth's landmarks
//    when a ground-truth file has the image, else the manifest's 68 landmarks
//    (then it measures the fit against its own target), normalised by the
//    inter-ocular (outer eye corners) distance and by sqrt(w h) of the box.
//  - shape_nme: section 4.2's shape NME against the ground-truth mesh (when a
//    ground-truth file has the image) after a similarity alignment (default;
//    the fit's shape and M share a scale/rotation ambiguity, so only the shape
//    up to a similarity is determined by an image).
// Yaw: |yaw| in degrees from the ground truth when known, else the manifest's
// Pose_Para, else the fit's /pose/angles (yaw_source says which).
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "metrics/Metrics.h"

namespace facebatch::eval {

struct EvalOptions {
  std::vector<std::string> inputs;        ///< shard / merged files, or directories (their *.h5, not *.parts)
  std::vector<std::string> manifests;     ///< --manifest (required, one or more)
  /// --ground-truth files; empty: each manifest root's facebatch_ground_truth.h5 when present.
  std::vector<std::string> ground_truth;
  std::string out;                        ///< --out DIR (required): per_image.csv, summary.json
  std::string shape_alignment = "similarity";  ///< --shape-alignment similarity|none
  int threads = 0;                        ///< --threads (0 = all cores)
  std::string progress = "auto";          ///< --progress auto|bar|log|none
  void Check() const;                     ///< throws UsageError
};

/// The yaw bins of the summaries (absolute yaw, degrees): [0, 30), [30, 60), [60, 90+].
const std::vector<std::string>& YawBins();
/// Bin name of an absolute yaw in degrees ("" when not finite).
std::string YawBin(double yaw_degrees);

inline constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

struct ImageEval {
  std::string id, subset, file;       ///< manifest id, subset (or corpus), input file
  std::string status = "ok";          ///< "ok" or "failed" (the fit's, or eval's own reason)
  std::string reason_code, reason;
  double yaw = kUnknown;              ///< degrees, signed; NaN when unknown
  std::string yaw_source;             ///< ground_truth | manifest | fit | "" (unknown)
  std::string landmark_source;        ///< ground_truth | manifest | "" (none)
  double l21 = kUnknown, nme_io = kUnknown, nme_bbox = kUnknown, shape_nme = kUnknown;  ///< NaN when not computable
  /// l21 over the rendered face pixels that the ground truth's occluder does not hide
  /// (synthetic ground truth of version 2; NaN otherwise).
  double l21_unoccluded = kUnknown;
  double fit_seconds = kUnknown;      ///< /fit/seconds (wall time of the image's batch)
};

/// The metrics reported, in CSV/JSON order.
const std::vector<std::string>& MetricNames();  ///< l21, nme_io, nme_bbox, shape_nme, l21_unoccluded
double MetricValue(const ImageEval& e, const std::string& metric);

struct EvalSummary {
  std::vector<ImageEval> images;
  /// stats[metric][bin], bin "all" or one of YawBins().
  std::map<std::string, std::map<std::string, metrics::Stats>> stats;
  std::map<std::string, int64_t> counts;  ///< "images", "ok", "failed", "failed:<code>"
  std::string csv_path, json_path;
  std::string shape_alignment;
  /// metrics::ShapeSpreadRatio of the fitted shapes against the ground truth's (images with a
  /// ground-truth mesh; RMS ratio and ratio of medians), NaN with fewer than 2.
  double shape_spread_ratio = kUnknown, shape_spread_ratio_median = kUnknown;
  int64_t shape_spread_images = 0;
  std::string Table() const;  ///< readable summary table (stdout)
};

/// Evaluates every image of the inputs. Throws InputError naming the file for an
/// unreadable input, a file without /maps/shape or /maps/albedo, or a bad manifest /
/// ground-truth file; per-image problems become failed rows.
EvalSummary RunEval(const EvalOptions& options);

/// Computes the statistics of `images` (overall and by yaw bin) into a summary.
void SummariseImages(EvalSummary& summary);

/// Writes `per_image.csv` and `summary.json` of `summary` into `dir` (created).
void WriteEvalOutputs(EvalSummary& summary, const std::string& dir);
/// Reads the per-image rows back from an eval directory's summary.json (for `facebatch report`).
std::vector<ImageEval> ReadEvalImages(const std::string& dir);

}  // namespace facebatch::eval
