#pragma once
// The synthetic ground-truth file `<corpus root>/facebatch_ground_truth.h5`
// (schemas/ground_truth.md, schemas/ground_truth.schema.json), written by
// `facebatch synth`, read by train/eval. Row i of every dataset belongs to ids[i]
// (the manifest item id of `facebatch index`). Rows are sorted by id.
#include <ATen/Tensor.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace facebatch::synth {

inline constexpr const char* kGroundTruthFormat = "facebatch-ground-truth";
inline constexpr int64_t kGroundTruthVersion = 2;  ///< 2 added /occluder; version 1 files are still read
inline constexpr const char* kGroundTruthFileName = "facebatch_ground_truth.h5";

struct GroundTruth {
  std::string corpus;             ///< 300w-lp | aflw2000 | celeba
  std::string generator;          ///< free text (generator and options)
  uint64_t seed = 0;
  int uv_rows = 0, uv_cols = 0;
  std::string created;            ///< ISO 8601 UTC
  std::string facebatch_version;
  std::vector<std::string> ids;   ///< [N]; stored as the JSON array attribute `ids_json`
  at::Tensor shape_uv;            ///< [N, 3, U, V] float32, model space (cm)
  at::Tensor albedo_uv;           ///< [N, 3, U, V] float32, linear RGB in [0, 1]
  at::Tensor M;                   ///< [N, 2, 4] float32, into the original image
  at::Tensor L;                   ///< [N, 27] float32
  at::Tensor landmarks;           ///< [N, 68, 2] float32, original image pixels
  at::Tensor pose;                ///< [N, 3] float32: yaw, pitch, roll (degrees)
  at::Tensor visible;             ///< [N, 68] uint8
  /// [N, 6] float32 per image: kind (0 none, 1 ellipse, 2 rectangle; -1 unknown: a
  /// version-1 file), centre x, y, half axes a, b (pixels of the original image) and the
  /// ellipse's angle (degrees, OpenCV's convention). synth::OccluderMask rasterises it.
  /// Undefined when writing: no occluders (zeros).
  at::Tensor occluder;
  at::Tensor template_mask;       ///< [U, V] uint8 (/template/mask)

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  /// Row of `id`, -1 when absent.
  int64_t Find(const std::string& id) const;
  /// Checks the dims of every tensor against N, U, V (throws Error naming the field).
  void Validate() const;
};

/// Writes `gt` (validated) to `path` (truncates). Throws InputError naming the file.
void WriteGroundTruth(const std::string& path, const GroundTruth& gt);
/// Streams a ground-truth file row by row (bounded memory for large corpora).
/// Thread-safe: WriteRow may be called from several threads (HDF5 calls are serialised).
class GroundTruthWriter {
 public:
  /// Creates `path` with the root attributes of `header`, its `ids` (N = ids.size())
  /// and `template_mask` (its other tensors are not used); every dataset is sized N.
  GroundTruthWriter(const std::string& path, const GroundTruth& header);
  ~GroundTruthWriter();
  /// Row `row`: shape_uv/albedo_uv [3, U, V], M [2, 4], L [27], landmarks [68, 2],
  /// pose [3] (float), visible [68] (uint8), occluder [6] (float, GroundTruth::occluder).
  void WriteRow(int64_t row, const at::Tensor& shape_uv, const at::Tensor& albedo_uv, const at::Tensor& M,
                const at::Tensor& L, const at::Tensor& landmarks, const at::Tensor& pose, const at::Tensor& visible,
                const at::Tensor& occluder);
  /// Checks that every row was written, then closes (throws Error otherwise).
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The occluder of one ground-truth row (GroundTruth::occluder [6]) drawn into a
/// height x width 8-bit mask (255 where it hides the image), as the generator drew it.
/// Kind 0 or -1 (none / unknown): all zeros.
cv::Mat OccluderMask(const at::Tensor& occluder, int height, int width);

/// Reads and validates a ground-truth file: format, version (unknown versions are
/// rejected with a message naming the file and both versions), dims.
GroundTruth ReadGroundTruth(const std::string& path);

}  // namespace facebatch::synth
