#pragma once
// The paper's evaluation metrics (Tran, Liu, Liu, CVPR 2019, section 4), as
// tensor-level functions: the one metrics module, shared by `facebatch eval`
// (fit outputs, lib/eval), `facebatch eval-model` and training validation
// (lib/train). It sits above fit (l2,1 is fit::ImageL21) and below train/eval.
//
// Every function takes a batch and returns one value per image, [B] float64 on
// the CPU (inputs may live on any device, in float32 or float64; they are
// converted). Undefined values are NaN (never 0): an image with no covered
// pixel, a degenerate normalisation (zero inter-ocular distance or box), or no
// point with a positive weight.
//
// Conventions (common.md): images float [B, 3, H, W] RGB in [0, 1]; masks
// [B, 1, H, W] bool or 0/1 float; landmarks [B, K, 2] in pixels (x right, y
// down, origin at the centre of the top-left pixel); K = 68 in iBUG order
// for the normalisations that need eye corners; vertices [B, N, 3].
#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace facebatch::metrics {

/// iBUG-68 outer eye corners (the inter-ocular distance of the NMEs below).
constexpr int kOuterEyeLeft68 = 36;   ///< image-left eye, outer corner
constexpr int kOuterEyeRight68 = 45;  ///< image-right eye, outer corner

/// Table 1's reconstruction error (eq. 4's l2,1 norm, images in [0, 1]): per
/// image, the mean over the pixels q covered by the rendered face mask of the
/// l2 norm of the RGB difference, (1/|V|) sum_q ||rendered(q) - input(q)||_2,
/// on sRGB-encoded values. Computed by fit::ImageL21 (rendered and input are
/// linear RGB); here an image with no covered pixel gives NaN instead of 0.
/// rendered, input: [B, 3, H, W]; mask: [B, 1, H, W] (bool or 0/1 float).
at::Tensor L21Error(const at::Tensor& rendered, const at::Tensor& input, const at::Tensor& mask);

/// Normalisation of a landmark NME.
enum class NmeNormalisation {
  kInterOcular,  ///< ||g_36 - g_45||: outer eye corners of the ground truth (68 points only)
  kBoundingBox,  ///< sqrt(w * h) of the ground-truth landmarks' axis-aligned box (AFLW2000-3D protocol)
};
const char* NmeNormalisationName(NmeNormalisation n);  ///< "interocular", "bbox"

/// Normaliser per image [B] (float64): inter-ocular distance or sqrt(w h) of the
/// box of the ground-truth points (over the points with positive weight, or all).
at::Tensor LandmarkNormaliser(const at::Tensor& ground_truth, NmeNormalisation normalisation,
                              const at::Tensor& weights = {});

/// Landmark NME: per image, the mean over the points (weighted by `weights`
/// [B, K] 0/1 when given, e.g. visibility; undefined = all points) of
/// ||predicted_k - ground_truth_k||_2, divided by LandmarkNormaliser(ground_truth).
/// predicted, ground_truth: [B, K, 2] in the same image's pixels. NaN when the
/// weights sum to 0 or the normaliser is 0 / not finite.
at::Tensor LandmarkNme(const at::Tensor& predicted, const at::Tensor& ground_truth,
                       NmeNormalisation normalisation, const at::Tensor& weights = {});

/// How a recovered mesh is put into the ground truth's frame before the shape NME.
enum class ShapeAlignment {
  kNone,        ///< compare the vertices as they are (same model space, e.g. fits to a mesh)
  kSimilarity,  ///< least-squares similarity (rotation, uniform scale, translation; Umeyama 1991)
};
const char* ShapeAlignmentName(ShapeAlignment a);            ///< "none", "similarity"
ShapeAlignment ParseShapeAlignment(const std::string& text);  ///< throws UsageError

/// A similarity transform per batch item: x -> scale R x + translation (float64).
struct Similarity {
  at::Tensor scale;        ///< [B]
  at::Tensor rotation;     ///< [B, 3, 3], det +1
  at::Tensor translation;  ///< [B, 3]
  /// Applies it to points [B, N, 3] (any dtype; float64 result on the CPU).
  at::Tensor Apply(const at::Tensor& points) const;
};

/// The least-squares similarity taking `source` onto `target` (Umeyama 1991, no
/// reflection): minimises sum_n w_n ||s R p_n + t - g_n||^2. [B, N, 3] each,
/// corresponding rows; `weights` [B, N] 0/1 or undefined (all).
Similarity EstimateSimilarity(const at::Tensor& source, const at::Tensor& target, const at::Tensor& weights = {});

/// The least-squares similarity transform of `source` onto `target`
/// ([B, N, 3] each, corresponding rows; `weights` [B, N] 0/1 or undefined),
/// applied to `source`: returns s R source + t, [B, N, 3] float64 (Umeyama 1991;
/// no reflection).
at::Tensor SimilarityAlign(const at::Tensor& source, const at::Tensor& target, const at::Tensor& weights = {});

/// Shape NME (section 4.2): per image, the mean per-vertex Euclidean distance
/// between the recovered vertices and the ground-truth vertices (corresponding
/// rows, [B, N, 3]; `weights` [B, N] 0/1 selects the compared vertices, undefined =
/// all), divided by the ground truth's 3-D inter-ocular distance
/// ||G[landmarks68[36]] - G[landmarks68[45]]||. `landmarks68` [68] int64 vertex ids.
/// With kSimilarity the recovered vertices are first aligned to the ground truth
/// (SimilarityAlign over the compared vertices).
at::Tensor ShapeNme(const at::Tensor& recovered, const at::Tensor& ground_truth, const at::Tensor& landmarks68,
                    ShapeAlignment alignment, const at::Tensor& weights = {});

/// Spread of a set of shapes (issue 14: what makes a mean-face model visible):
/// every shape [B, N, 3] is similarity-aligned onto `reference` [N, 3] (e.g. the
/// template's mean shape), then per shape the mean per-vertex distance from the
/// set's mean aligned shape, [B] float64 (cm for model-space shapes). The spread
/// of B copies of one shape is 0.
at::Tensor ShapeSpread(const at::Tensor& shapes, const at::Tensor& reference);

/// Spread ratio of recovered shapes against their ground truth (same images, same
/// order): rms = RMS(ShapeSpread(recovered)) / RMS(ShapeSpread(ground_truth));
/// median = the ratio of the medians. 1 = the recovered shapes vary as much as the
/// truth, 0 = one shape for every image (a collapsed, mean-face model). NaN with
/// fewer than 2 shapes or a ground truth without spread.
struct SpreadRatio {
  double rms = 0, median = 0;
};
SpreadRatio ShapeSpreadRatio(const at::Tensor& recovered, const at::Tensor& ground_truth, const at::Tensor& reference);

/// Summary statistics of a sample (NaNs are ignored; count = finite values).
/// Percentiles interpolate linearly between order statistics (numpy's default).
struct Stats {
  int64_t count = 0;
  double mean = 0, median = 0, p90 = 0, p95 = 0, min = 0, max = 0;  ///< NaN when count = 0
};
Stats Summarise(const std::vector<double>& values);
/// Linear-interpolation percentile (q in [0, 100]) of sorted finite values; NaN when empty.
double Percentile(const std::vector<double>& sorted, double q);

}  // namespace facebatch::metrics
