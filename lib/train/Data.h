#pragma once
// Training data pipeline of `facebatch train`: manifest items (io) -> 224 x 224
// crops (io::CropFace) + landmarks in crop coordinates + optional synthetic
// ground truth (schemas/ground_truth.md, written by `facebatch synth`),
// loaded by worker threads into a bounded prefetch queue, in a deterministic
// order given by a seed.
//
// Conventions (common.md): images [B, 3, S, S] RGB float in [0, 1];
// landmarks [B, K, 2] in crop pixels (origin at the centre of the top-left
// pixel, y down), K = 68 (iBUG) or 5; M [B, 2, 4] maps model space into CROP
// pixels; L [B, 27] SH, [R0..R8, G0..G8, B0..B8]; UV maps [B, 3, U, V].
#include <ATen/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/Crop.h"
#include "io/Manifest.h"
#include "synth/GroundTruth.h"

namespace facebatch::train {

/// Ground truth of synthetic corpora: one reader for the whole project
/// (schemas/ground_truth.md), in lib/synth. M and landmarks are in ORIGINAL image pixels.
using synth::GroundTruth;
using synth::kGroundTruthFileName;

/// M [2, 4] into the original image -> M into the crop: T [2x3] * [M; 0 0 0 1].
at::Tensor ProjectionToCrop(const at::Tensor& M, const cv::Matx23d& original_to_crop);

/// One loaded training item.
struct Sample {
  std::string id;
  at::Tensor image;            ///< [3, S, S]
  at::Tensor landmarks;        ///< [K, 2] crop pixels
  bool has_ground_truth = false;
  at::Tensor shape_uv, albedo_uv, M, L;  ///< [3,U,V], [3,U,V], [2,4] (crop), [27]; zeros without GT
};

/// A batch of samples (stacked), the input of one training step.
struct Batch {
  int64_t step = 0;  ///< data position: the step this batch belongs to
  std::vector<std::string> ids;
  at::Tensor images;        ///< [B, 3, S, S]
  at::Tensor landmarks;     ///< [B, K, 2]
  at::Tensor has_ground_truth;  ///< [B] float 0/1
  at::Tensor shape_uv, albedo_uv, M, L;
  /// Latent targets [B, l_S], [B, l_A] (train/LatentTargets.h); undefined without them.
  at::Tensor code_shape, code_albedo;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

/// Augmentation of the training crops (off by default; `train --augment.*`). Each item
/// draws from the seed and its data position (so a resumed run draws the same) a
/// similarity about the crop centre, composed with the crop's own, and optional
/// per-channel gains. The targets follow exactly: the landmarks and M go through the
/// same similarity (M_crop = J T M), and a gain g_c on the linear image is a gain on
/// L's channel c (the rendering A x shading(L) is linear in L). Shape and albedo maps
/// do not change. Validation items are never augmented.
struct Augmentation {
  double shift = 0;     ///< max |translation| per axis, as a fraction of the crop size
  double scale = 0;     ///< max relative change of scale
  double rotation = 0;  ///< max |rotation| in degrees
  double gain = 0;      ///< max relative change of each colour channel's gain
  bool enabled() const { return shift > 0 || scale > 0 || rotation > 0 || gain > 0; }
  void Check() const;   ///< UsageError naming the option ("--augment.<field>")
};

/// The usable items of a manifest (status ok, landmarks of one convention)
/// plus the ground truth of their corpus when the file exists.
class Dataset {
 public:
  /// `items`: manifest items to use (copied). `uv_rows/uv_cols`: the model's
  /// UV size (ground truth of another size is an InputError). `use_ground_truth`
  /// false ignores a ground-truth file.
  Dataset(const io::Manifest& manifest, std::vector<io::Item> items, int uv_rows, int uv_cols,
          bool use_ground_truth = true, int image_size = io::kCropSize);
  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  const io::Item& item(int64_t i) const { return items_[static_cast<size_t>(i)]; }
  int landmark_count() const { return landmark_count_; }
  int image_size() const { return image_size_; }
  bool has_ground_truth() const { return gt_ != nullptr; }
  const GroundTruth* ground_truth() const { return gt_.get(); }
  /// Path of the ground-truth file in use ("" without one).
  const std::string& ground_truth_path() const { return gt_path_; }
  const std::string& root() const { return root_; }
  /// Loads item i (image, crop, ground truth). Throws on unreadable images. With an
  /// augmentation set and `position` >= 0 (the item's data position), it is augmented.
  Sample Load(int64_t i, int64_t position = -1) const;
  void SetAugmentation(const Augmentation& augmentation, uint64_t seed);

  /// Identifiability of the shape targets (issue 14). Under weak perspective a
  /// similarity of S (scale, rotation, translation) is absorbed by M, and the crop
  /// removes the scale: an image determines S only up to a similarity. With this
  /// set, every ground-truth shape is similarity-aligned onto `reference_shape`
  /// [3, U, V] (the model's mean shape; least squares over the `mask` [U, V]
  /// pixels, metrics::EstimateSimilarity) and its M is changed so that
  /// M' S' = M S: images and landmarks are the same, the target no longer asks the
  /// encoder for what it cannot see.
  void NormaliseShapeTargets(const at::Tensor& reference_shape, const at::Tensor& mask);
  /// The shape target [3, U, V] of ground-truth row `row` (normalised when set).
  at::Tensor TargetShape(int64_t row) const;
  /// The projection target [2, 4] of ground-truth row `row` in the crop given by
  /// `original_to_crop` (normalised when set).
  at::Tensor TargetProjection(int64_t row, const cv::Matx23d& original_to_crop) const;

 private:
  std::string root_;
  std::vector<io::Item> items_;
  std::shared_ptr<GroundTruth> gt_;
  std::string gt_path_;
  int landmark_count_ = 68;
  int uv_rows_, uv_cols_, image_size_;
  Augmentation augmentation_;
  uint64_t augmentation_seed_ = 0;
  // Per ground-truth row: x -> scale R x + t onto the reference (NormaliseShapeTargets).
  at::Tensor norm_scale_, norm_rotation_, norm_translation_;  // [N], [N, 3, 3], [N, 3] float64
  at::Tensor norm_mask_;                                      // [U, V] bool
};

/// Stacks samples into a batch.
Batch Collate(const std::vector<Sample>& samples, int64_t step);

/// Deterministic order: the item index at global data position p (p = step *
/// batch + k) is perm_e[p mod N] with e = p / N and perm_e a Fisher-Yates
/// permutation drawn from splitmix64(seed, e) (same on every platform).
std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch);

/// Batches of a dataset in the deterministic order above, produced by
/// `threads` worker threads at most `prefetch` batches ahead of the consumer.
/// Next() returns the batch of step `start_step`, then the following ones.
class BatchStream {
 public:
  BatchStream(const Dataset& dataset, int64_t batch_size, uint64_t seed, int64_t start_step, int threads,
              int prefetch);
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;
  /// The next batch (rethrows a loading error of a worker).
  Batch Next();
  /// The ids of the batch of `step` (no loading; for tests and logs).
  std::vector<int64_t> Indices(int64_t step) const;

 private:
  void Worker();
  const Dataset& dataset_;
  int64_t batch_size_;
  uint64_t seed_;
  int prefetch_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  int64_t next_to_load_, next_to_return_;
  bool stop_ = false;
  std::string error_;
  std::vector<std::thread> workers_;
};

}  // namespace facebatch::train
