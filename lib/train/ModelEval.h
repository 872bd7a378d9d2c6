#pragma once
// `facebatch eval-model`: the evaluation protocols of Tran, Liu, Liu (CVPR 2019),
// section 4, for a trained model on a held-out SYNTHETIC corpus with ground truth
// (schemas/ground_truth.md, written by `facebatch synth`). See docs/ablation.md.
//
// Protocols (per image; every model kind: linear, nonlinear, gl, gl-proxy):
//  - encoder: the encoder's reconstruction I(S, A) with its own M and L:
//      the Table 1 metric (mean l2,1 RGB distance over the covered face pixels,
//      images in [0, 1], eq. 4) and the shape NME of S against the GT mesh.
//  - texture (section 4.2, Table 1's protocol): FIXED ground-truth geometry
//      (the GT shape map) and ground-truth projection M; f_A and L start from the
//      encoder's estimate and are optimised (Adam or SGD, per image) on the l2,1
//      error of I(S_gt, D_A(f_A)) under L; the l2,1 after `steps` is reported.
//      Models with proxies are rendered with the TRUE albedo A (the proxy A~ is
//      not used); without proxies A is the decoder's only output.
//  - shape (section 4.2): f_S starts from the encoder's estimate and is
//      optimised so that the decoded shape S matches the GT mesh (mean vertex
//      distance plus `normal_weight` x mean normal cosine distance); the NME
//      after `steps` is reported.
// NME (section 4.2): mean per-vertex Euclidean distance between the recovered
// and the ground-truth mesh (same topology, model space, no alignment) divided
// by the GT inter-ocular distance = the 3D distance between the outer eye
// corners (iBUG landmarks 37 and 46, 0-based 36 and 45) of the GT mesh.
//
// The metrics are lib/metrics (metrics::L21Error, metrics::ShapeNme with and
// without similarity alignment, metrics::ShapeSpreadRatio), shared with `eval`.
//
// Tensor layouts as everywhere (common.md): images [B, 3, S, S] RGB in [0, 1],
// UV maps [B, 3, U, V], vertices [B, N, 3] model space, M [B, 2, 4] into crop
// pixels (origin at the centre of the top-left pixel, y down), L [B, 27].
#include <ATen/Tensor.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fit/Optimiser.h"
#include "metrics/Metrics.h"

namespace facebatch::render {
struct FaceTopology;
}
namespace facebatch::model {
class FaceModel;
}

namespace facebatch::train {

/// Format of the summary JSON (docs/ablation.md "Outputs").
inline constexpr const char* kModelEvalFormat = "facebatch-model-eval";
inline constexpr int kModelEvalVersion = 1;

/// Protocol bits.
enum EvalProtocol : unsigned {
  kEvalEncoder = 1u << 0,
  kEvalTexture = 1u << 1,
  kEvalShape = 1u << 2,
  kEvalAll = kEvalEncoder | kEvalTexture | kEvalShape,
};
/// "all" or a comma list of encoder, texture, shape (UsageError otherwise).
unsigned ParseEvalProtocols(const std::string& text);

struct ModelEvalOptions {
  std::string model;         ///< --model: model file (schemas/model.md), required
  std::string manifest;      ///< --manifest: held-out manifest (facebatch index), required
  std::string ground_truth;  ///< --ground-truth: "" = <manifest root>/facebatch_ground_truth.h5
  std::string out;           ///< --out: output directory, required
  std::string protocol = "all";  ///< --protocol: all | comma list of encoder, texture, shape
  int steps = 100;           ///< --steps: optimisation iterations of the texture and shape protocols
  int64_t max_images = 0;    ///< --max-images: evaluate the first N usable items (0: all)
  int64_t batch = 8;         ///< --batch: images per batch (each image is optimised on its own)
  std::string method = "adam";     ///< --method: adam | sgd (the paper says SGD; Adam is the default)
  /// --texture-step-size: Adam step on f_A and L. 0.1 (not fit's 0.01): measured on a briefly
  /// trained demo model, 50 steps reached l2,1 0.21 / 0.12 / 0.09 / 0.08 at 0.01 / 0.05 / 0.1 / 0.2.
  double texture_step_size = 0.1;
  double shape_step_size = 0.1;    ///< --shape-step-size: Adam step on f_S (same measurement: NME 0.050 / 0.046 / 0.045 / 0.045)
  double normal_weight = 0.1;      ///< --normal-weight: weight of the normal cosine term (shape protocol)
  /// --tolerance: an image stops early when its objective changes by less than this
  /// (relative) for 5 iterations (fit::ConvergenceOptions). Default 0: every image
  /// runs exactly `steps` iterations (the same budget for every model).
  double tolerance = 0;
  std::string device = "cpu";      ///< --device: cpu | cuda | cuda:N
  int threads = 0;                 ///< --threads: compute threads (0: all cores)
  std::string progress = "auto";   ///< --progress: auto | bar | log | none
  void Check() const;              ///< UsageError naming the option
};

// --- metrics (per image, [B] float64 on the inputs' device) -------------------

/// 3D distance between the outer eye corners (iBUG 36, 45) of `vertices` [B, N, 3]
/// (differentiable, on the inputs' device: the shape protocol's objective; the
/// reported NMEs are metrics::ShapeNme).
at::Tensor InterOcularDistance(const render::FaceTopology& topology, const at::Tensor& vertices);
// --- protocols on one batch (tensors on the model's device) --------------------

/// I(S, A) of the given maps under M, L, compared with `images` over the
/// rendering's coverage: the l2,1 per image. shape/albedo maps [B, 3, U, V].
at::Tensor RenderL21(const model::FaceModel& model, const at::Tensor& images, const at::Tensor& shape_map,
                     const at::Tensor& albedo_map, const at::Tensor& M, const at::Tensor& L);

struct ProtocolFit {
  at::Tensor initial;  ///< [B] metric at the encoder's initialisation
  at::Tensor final;    ///< [B] metric of the best state after the optimisation
  at::Tensor initial_aligned, final_aligned;  ///< [B] shape protocol: the NMEs after similarity alignment
  at::Tensor vertices;       ///< [B, N, 3] shape protocol: the fitted mesh
  std::vector<fit::FitSummary> summaries;
};

/// Table 1 protocol: geometry = `gt_shape_map` under `gt_M` (fixed); f_A and L
/// start at `f_albedo`, `L` (copied) and minimise the l2,1 of I(S_gt, A) with
/// the true albedo A = D_A(f_A).value. Metric: l2,1.
ProtocolFit FitTexture(const model::FaceModel& model, const at::Tensor& images, const at::Tensor& gt_shape_map,
                       const at::Tensor& gt_M, const at::Tensor& f_albedo, const at::Tensor& L,
                       const fit::MinimiseOptions& options);

/// Section 4.2: f_S starts at `f_shape` (copied) and minimises
/// NME(S, S_gt') + normal_weight * mean_v (1 - cos(n_v, n_gt'_v)) with S = D_S(f_S).value
/// and S_gt' the GT mesh similarity-aligned onto the initial S (a global similarity of S
/// is M's under weak perspective). Metrics: NME against the GT as it is (final) and
/// after similarity alignment (final_aligned).
ProtocolFit FitShape(const model::FaceModel& model, const at::Tensor& gt_shape_map, const at::Tensor& f_shape,
                     double normal_weight, const fit::MinimiseOptions& options);

// --- the command ---------------------------------------------------------------

/// One image's results (NaN = not evaluated).
struct ImageEval {
  std::string id;
  std::string status = "ok";  ///< ok | failed (unreadable image ...) | no-ground-truth
  std::string reason;
  double yaw;                 ///< ground-truth yaw (degrees), NaN without ground truth
  double encoder_l21, encoder_shape_nme, encoder_shape_nme_aligned, mean_face_shape_nme_aligned;
  double texture_l21_init, texture_l21;
  int texture_iterations = 0;
  double shape_nme_init, shape_nme, shape_nme_init_aligned, shape_nme_aligned;
  int shape_iterations = 0;
  ImageEval();
};

struct MetricStats {
  int64_t count = 0;
  double mean = 0, median = 0;
};

struct ModelEvalSummary {
  std::string model_path, model_kind;  ///< kind: linear | nonlinear | gl | gl-proxy
  std::string texture_albedo;          ///< which albedo the texture protocol renders
  int steps = 0;
  std::vector<ImageEval> images;
  /// Per metric (CSV column names: encoder_l21, encoder_shape_nme, encoder_shape_nme_aligned,
  /// mean_face_shape_nme_aligned, texture_l21_init, texture_l21, shape_nme_init, shape_nme,
  /// shape_nme_init_aligned, shape_nme_aligned) over the images where it is finite.
  std::map<std::string, MetricStats> stats;
  /// Shape spread ratios (metrics::ShapeSpreadRatio) over the images with ground truth:
  /// the encoder's shapes and, with the shape protocol, the fitted ones (NaN when not run).
  metrics::SpreadRatio encoder_spread{NAN, NAN}, fitted_spread{NAN, NAN};
  int64_t spread_images = 0;
  int64_t failed = 0;
  double seconds = 0;
  std::string csv_path, json_path;
  /// The printed table (metric, images, mean, median).
  std::string Table() const;
};

/// Evaluates options.model on the manifest's usable items (status ok, with
/// landmarks; crops as io::CropFace at the model's image size) and writes
/// <out>/model_eval.csv (one row per image) and <out>/model_eval.json (summary).
ModelEvalSummary RunModelEval(const ModelEvalOptions& options);

// --- the Linear baseline of the ablation (lib/train/ModelEvalLinear.cpp) ------

/// `facebatch linear-model`: a linear (PCA) model of the ground-truth shape and
/// albedo maps of a synthetic corpus (model::BuildLinearModel), the analogue of
/// the paper's "Linear" row (the Basel Face Model is a PCA of scans). Its
/// encoder is untrained: train it with `facebatch train --model-in` (only the
/// encoder trains; the bases are fixed buffers).
struct LinearModelOptions {
  std::string ground_truth;  ///< --ground-truth: facebatch_ground_truth.h5 of a TRAINING corpus (required)
  std::string preset = "demo";  ///< --preset: encoder and image size (the UV size is the ground truth's)
  int rank_shape = 0;        ///< --rank-shape: shape components (0: the preset's l_S), at most maps - 1
  int rank_albedo = 0;       ///< --rank-albedo: albedo components (0: the preset's l_A), at most maps - 1
  int64_t max_maps = 1000;   ///< --max-maps: use the first N rows (bounded SVD cost; 0: all)
  uint64_t seed = 0;         ///< --seed: encoder initialisation
  std::string out;           ///< --out: model file (required)
  int threads = 0;           ///< --threads (0: all cores)
  std::string command;       ///< provenance
  void Check() const;        ///< UsageError naming the option
};

struct LinearModelSummary {
  std::string path;
  int64_t maps = 0;
  int rank_shape = 0, rank_albedo = 0;
  /// Fraction of the maps' variance the kept components explain.
  double explained_shape = 0, explained_albedo = 0;
  std::string weights_sha256;
};

LinearModelSummary RunLinearModel(const LinearModelOptions& options);

}  // namespace facebatch::train
