#pragma once
// The learning / fitting objective of Tran, Liu, Liu, "Towards High-fidelity
// Nonlinear 3D Face Morphable Model" (CVPR 2019), section 3, eqs. 4-16, as pure
// tensor functions (autograd flows through every input that needs it).
//
// Conventions (see common.md and render/Topology.h):
//  - Images: float [B, 3, H, W] RGB in [0, 1]; coverage masks [B, 1, H, W]
//    (bool, or float weights in [0, 1]).
//  - UV maps: float [B, C, U, V]; the face mask is bool [U, V]; flip() is the
//    column flip c -> V - 1 - c (the UV layout is left-right symmetric).
//  - Shape maps hold (x, y, z) in model units in channels 0, 1, 2.
//  - Landmarks: float [B, K, 2] in image pixels (x right, y down, origin at
//    the centre of the top-left pixel); K is 68 or 5 (any K works).
//  - Projection M: float [B, 2, 4], (x, y) = M [X, Y, Z, 1]^T in image pixels.
//
// Every loss returns a LossResult: a per-image tensor [B] (so a fitter can
// test convergence per image) and its mean over the batch. Every entry checks
// dtype (floating point; float32 or float64), shape and device and throws
// facebatch::Error naming the function and the argument.
//
// Normalisation: the paper writes most terms as plain sums; here every sum is
// divided by a count so that a term's magnitude does not depend on the UV or
// image resolution (the paper's lambdas "bring losses to similar magnitudes",
// section 4, so only the relative scale matters). Each function documents its
// count. Norms that are non-differentiable at 0 (||.||_2, ||.||_2^p) are
// computed exactly, except that where ||x||^2 <= kNormEps they are 0 with a
// zero gradient (instead of NaN at 0).
#include <ATen/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace facebatch::fit {

/// Smoothing constant of the norms above (squared units).
constexpr double kNormEps = 1e-30;

/// A loss value per image and its batch mean.
struct LossResult {
  at::Tensor per_image;  ///< [B], same dtype/device as the inputs
  at::Tensor mean;       ///< scalar: per_image.mean()
};

// ---------------------------------------------------------------------------
// Reconstruction (eqs. 4-6)

/// Eq. 4, the robust l2,1 photometric loss (also the paper's Table 1 metric):
/// per image, (1 / |V|) sum_{q in V} || rendered(q) - input(q) ||_2 over the
/// covered pixels V (coverage[b, 0, q] true / > 0; float coverage acts as
/// weights: sum w ||.|| / sum w). Images with no covered pixel give 0.
/// rendered, input: [B, 3, H, W]; coverage: [B, 1, H, W] bool or float.
LossResult PhotometricLoss(const at::Tensor& rendered, const at::Tensor& input,
                           const at::Tensor& coverage);

/// The paper's Table 1 metric: eq. 4's l2,1 distance measured on the images'
/// own [0, 1] pixel values. `rendered` and `input` are linear RGB (the model's
/// convention, core/Colour.h); both are sRGB-encoded, then PhotometricLoss.
/// Used for every reported reconstruction error (fit records, eval, training
/// metrics, eval-model), so that they are comparable with one another.
LossResult ImageL21(const at::Tensor& rendered, const at::Tensor& input, const at::Tensor& coverage);

/// Feature distance of the perceptual loss.
enum class FeatureDistance {
  kL2,      ///< eq. 5: ||phi_j(a) - phi_j(b)||_2^2 / (W_j H_j C_j)
  kCosine,  ///< 1 - cos(phi_j(a), phi_j(b)) on the flattened per-image features
};

/// Eqs. 5-6: the perceptual loss with a user-supplied TorchScript feature
/// network phi (the paper used a pretrained face recognition network that
/// cannot ship). The network's `forward` (or `method`) takes images
/// [B, 3, H, W] (after the optional normalisation below) and returns
///  - a Tensor: one layer, named "0";
///  - a tuple or list of Tensors: layers named "0", "1", ...;
///  - a Dict[str, Tensor]: layers named by their keys.
/// `layers` selects the subset C (empty: every returned layer). The loss is
/// (1/|C|) sum_{j in C} d_j per image. Features of the input image are computed
/// without gradient; gradients reach the rendered image. The network's
/// parameters are frozen (requires_grad false) and it is put in eval mode.
/// Not thread-safe (it moves its network to the images' device/dtype): use
/// one instance per worker/device.
class PerceptualLoss {
 public:
  struct Options {
    std::string model_path;            ///< TorchScript file (torch.jit.save)
    std::vector<std::string> layers;   ///< subset C of output names; empty: all
    FeatureDistance distance = FeatureDistance::kL2;
    std::string method = "forward";
    /// Per-channel normalisation applied before the network: (x - mean) / std.
    /// Empty: images in [0, 1] are passed as they are.
    std::vector<double> mean, std;
  };

  /// Loads options.model_path (throws InputError naming the file).
  explicit PerceptualLoss(Options options);
  /// Uses an already loaded module (options.model_path is only a label).
  PerceptualLoss(Options options, const torch::jit::Module& module);
  ~PerceptualLoss();
  PerceptualLoss(PerceptualLoss&&) noexcept;
  PerceptualLoss& operator=(PerceptualLoss&&) noexcept;

  /// rendered, input: [B, 3, H, W]. Moves the network to their device/dtype
  /// on first use (and when they change).
  LossResult operator()(const at::Tensor& rendered, const at::Tensor& input) const;

  /// The named feature maps of `images` (the selected layers, in order).
  std::vector<std::pair<std::string, at::Tensor>> Features(const at::Tensor& images) const;

  const Options& options() const { return options_; }

 private:
  struct Impl;
  Options options_;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Landmarks (eq. 7)

/// Projects 3D points with the weak-perspective matrix: M [B, 2, 4],
/// points [B, K, 3] -> [B, K, 2] = (M [X Y Z 1]^T)^T (eq. 7's M * [S(:, d); 1]).
at::Tensor ProjectPoints(const at::Tensor& projection, const at::Tensor& points);

/// Eq. 7, the landmark alignment loss ||M [S(:,d); 1] - U||_2^2, normalised
/// (our choice; the paper and Tran & Liu 2018 use the plain sum over 68
/// points): per image
///   sum_k w_k ||p_k - u_k||_2^2 / (scale^2 sum_k w_k),
/// i.e. the weighted mean squared point error in units of `scale` pixels
/// (default 224, the crop width: a 2.24 px error on every point gives 1e-4).
/// projected, target: [B, K, 2]; weights: [B, K] (visibility 0/1 or
/// confidences) or undefined (all 1). Images whose weights sum to 0 give 0.
LossResult LandmarkLoss(const at::Tensor& projected, const at::Tensor& target,
                        const at::Tensor& weights = {}, double scale = 224.0);

// ---------------------------------------------------------------------------
// Regularisers (eqs. 8-10; eq. 13 applies them to the proxies)

/// Eq. 8, albedo symmetry ||A - flip(A)||_1 over the mask: per image,
/// sum over pixels q with mask(q) and mask(flip(q)) of sum_c |A - flip(A)|,
/// divided by the number of such pixels (mean per-pixel l1 over RGB).
/// albedo: [B, C, U, V]; mask: [U, V] bool.
LossResult AlbedoSymmetryLoss(const at::Tensor& albedo, const at::Tensor& mask);

/// Chromaticity c(x) = I(x) / ||I(x)||_2 of an RGB map [B, 3, ...] (the
/// paper's I(x)/|I(x)|; 0 where ||I|| < 1e-6).
at::Tensor Chromaticity(const at::Tensor& rgb);

/// Eq. 9, albedo constancy:
///   sum_i sum_{j in N_i} w_ij ||A(i) - A(j)||_2^p,
///   w_ij = exp(-alpha ||c(i) - c(j)||_2),
/// with N_i the 4-neighbourhood and c the chromaticity of the INPUT image
/// unwrapped to UV (`input_uv` [B, 3, U, V], "referenced from the input image
/// using the current estimated projection"). Reconstructed from Tran & Liu
/// 2018 (sec. 3.3): alpha = 15, p = 0.8 (the paper gives neither). Pairs count
/// once (right and down neighbours; the paper's double sum counts each twice,
/// a constant factor) and only where both pixels are in `mask` [U, V] and
/// valid in `validity` [B, 1, U, V] (bool or float; pixels not seen in the
/// input have no chromaticity; undefined: all valid). Per image the sum is
/// divided by the number of pairs inside the mask (a constant), so
/// occluded pairs count as 0. The weights carry no gradient.
LossResult AlbedoConstancyLoss(const at::Tensor& albedo, const at::Tensor& input_uv,
                               const at::Tensor& validity, const at::Tensor& mask,
                               double alpha = 15.0, double p = 0.8);

/// Eq. 10, shape smoothness (Laplacian): per image
///   sum_i || S(i) - (1/|N_i|) sum_{j in N_i} S(j) ||_2
/// over mask pixels i with N_i = their 4-neighbours inside the mask (pixels
/// with no masked neighbour are skipped), divided by the number of such i.
/// shape: [B, 3, U, V]; mask: [U, V] bool.
LossResult ShapeSmoothnessLoss(const at::Tensor& shape, const at::Tensor& mask);

// ---------------------------------------------------------------------------
// Proxy and residual (eqs. 14-16)

/// Eq. 14, residual magnitude, one map at a time (L_res = shape part + albedo
/// part): per image, sum over mask pixels of sum_c |X - X_proxy|, divided by
/// the number of mask pixels. Returns the shape and albedo parts separately
/// so they can be weighted separately (model units vs. colour).
LossResult ResidualMagnitudeLoss(const at::Tensor& map, const at::Tensor& proxy,
                                 const at::Tensor& mask);

/// Which pixels eq. 16's mask T selects.
enum class ResidualSymmetryMask {
  /// T = 1 - visibility: the paper applies the loss "on occluded regions"
  /// although it calls T a visibility mask; we read T as the occlusion mask
  /// (default; our reconstruction).
  kOccluded,
  /// T = visibility, literally as eq. 16 is written.
  kAsGiven,
};

/// Eq. 16, residual soft symmetry on the depth residual:
///   || T (.) (dS_z - flip(dS_z)) ||_1,  dS_z = S_z - S_proxy_z (channel 2),
/// per image summed over pixels q with mask(q) and mask(flip(q)), divided by
/// the number of such pixels (a constant, so the term grows with the occluded
/// area as the paper's sum does). visibility: [B, 1, U, V] in [0, 1] (bool or
/// float; "approximated based on estimated surface normal direction").
LossResult ResidualSymmetryLoss(const at::Tensor& shape, const at::Tensor& shape_proxy,
                                const at::Tensor& visibility, const at::Tensor& mask,
                                ResidualSymmetryMask which = ResidualSymmetryMask::kOccluded);

/// Eq. 16's T, "approximated based on estimated surface normal direction":
/// the visibility of each UV pixel from its unit normal in camera space
/// (`normals_uv` [B, 3, U, V], z towards the camera, e.g. the mesh normals
/// rotated by M): 1 where n_z >= softness, n_z / softness in between, 0 where
/// n_z <= 0 (softness 0: a hard n_z > 0 test). [B, 1, U, V], no gradient.
at::Tensor VisibilityFromNormals(const at::Tensor& normals_uv, double softness = 0.0);

// ---------------------------------------------------------------------------
// Latent priors (issue 7: "optional latent priors"; not in the paper)

/// Per image mean of f^2 over the latent dimensions: latent [B, D].
LossResult LatentPriorLoss(const at::Tensor& latent);

// ---------------------------------------------------------------------------
// Eq. 15 pairings

/// One rendered pairing of (shape, albedo) for the reconstruction loss.
enum Pairing : unsigned {
  kProxyShapeProxyAlbedo = 1u << 0,  ///< I(S~, A~)
  kProxyShapeTrueAlbedo = 1u << 1,   ///< I(S~, A)
  kTrueShapeProxyAlbedo = 1u << 2,   ///< I(S, A~)
  kTrueShapeTrueAlbedo = 1u << 3,    ///< I(S, A)
};
/// Eq. 15: the three pairings, deliberately NOT I(S, A).
constexpr unsigned kPaperPairings =
    kProxyShapeProxyAlbedo | kProxyShapeTrueAlbedo | kTrueShapeProxyAlbedo;
/// The fitter's default: I(S, A) only.
constexpr unsigned kFitPairings = kTrueShapeTrueAlbedo;
/// "proxy-proxy", "proxy-true", "true-proxy", "true-true" (shape-albedo).
const char* PairingName(Pairing pairing);
/// Parses "paper", "fit", or a comma list of the names above (UsageError otherwise).
unsigned ParsePairings(const std::string& text);
std::string PairingsToString(unsigned pairings);

/// What a render callback returns: image [B, 3, H, W] and coverage [B, 1, H, W].
struct Rendering {
  at::Tensor image;
  at::Tensor coverage;
};
/// Renders shape map [B, 3, U, V] with albedo map [B, 3, U, V] (the caller
/// binds projection and lighting).
using RenderFn = std::function<Rendering(const at::Tensor& shape, const at::Tensor& albedo)>;

/// L_rec of each pairing (eq. 6: photometric eq. 4 plus lambda_f times the
/// perceptual eq. 5 when `perceptual` is given and perceptual_weight > 0).
struct PairingLosses {
  /// (pairing, L_rec) for every requested pairing, in enum order.
  std::vector<std::pair<Pairing, LossResult>> terms;
  /// The renderings, in the same order (for metrics and visualisation).
  std::vector<Rendering> renderings;
  /// Sum over the requested pairings (eq. 15 with kPaperPairings).
  LossResult total;
};
/// Eq. 15: renders each pairing selected in `pairings` (kPaperPairings: the
/// paper's three; kFitPairings: I(S, A)) and compares it with `input`.
PairingLosses ReconstructionPairings(const at::Tensor& shape, const at::Tensor& shape_proxy,
                                     const at::Tensor& albedo, const at::Tensor& albedo_proxy,
                                     const at::Tensor& input, const RenderFn& render,
                                     unsigned pairings = kPaperPairings,
                                     const PerceptualLoss* perceptual = nullptr,
                                     double perceptual_weight = 0.0);

}  // namespace facebatch::fit
