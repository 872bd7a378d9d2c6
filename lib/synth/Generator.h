#pragma once
// Procedural synthetic faces over the face template (issue 6, `facebatch synth`).
//
// A face is drawn from a seeded random generator in three independent parts:
//  - identity (seeded per identity): shape as smooth UV-space deformation fields
//    added to the template's mean shape (face width/height, jaw, nose, eyes,
//    lips, brows, asymmetry, smooth random detail) and an albedo map painted in
//    UV space (skin tone over a wide range, lips, brows, eyes, blemishes, fine
//    detail, optional facial hair);
//  - expression (per image): mouth opening (lower lip + jaw moved down, the
//    stretched lip gap painted dark) and eye closing (upper lid moved down,
//    lids painted over the eye), as shape offsets in those UV regions;
//  - scene (per image): pose (yaw, pitch, roll), scale and position in the
//    image, SH lighting (ambient + coloured, possibly strong directional light),
//    a background (gradient, noise texture, clutter) and optional occluders.
// The face is rendered with lib/render (weak perspective M, SH lighting) and
// composited over the background with the coverage mask (edges softened).
//
// All randomness comes from mt19937_64's raw output (machine independent).
// Conventions: UV maps [3, U, V] float32 (Topology.h), model units cm
// (Template.h), M [2, 4] in image coordinates with the pixel-centre origin,
// L [27] SH lighting (Lighting.h), albedo linear RGB in [0, 1].
#include <ATen/Tensor.h>

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "render/Template.h"

namespace facebatch::synth {

/// Probability of facial hair (beard, moustache, stubble) per identity: the generator's
/// default, which keeps every seed's faces as they were drawn before it was an option.
inline constexpr double kDefaultFacialHairProb = 0.22;

/// Ranges of the random scene (degrees; probabilities in [0, 1]).
struct SceneOptions {
  double yaw_max = 90;      ///< |yaw| <= yaw_max (300W-LP: 90)
  double pitch_max = 30;    ///< |pitch| <= pitch_max
  double roll_max = 20;     ///< |roll| <= roll_max
  double face_min = 0.30;   ///< face width (template width at scale) as a fraction of the image width
  double face_max = 0.60;
  double occluder_prob = 0.15;  ///< probability of an occluder over the face
  double expression_prob = 0.5; ///< probability of a non-neutral expression (mouth/eyes)
};

/// One synthetic face with its ground truth (tensors float32, CPU, contiguous).
struct SynthFace {
  at::Tensor shape_uv;   ///< [3, U, V] model space (mean + identity + expression), 0 outside the mask
  at::Tensor albedo_uv;  ///< [3, U, V] linear RGB in [0, 1], 0 outside the mask
  at::Tensor M;          ///< [2, 4] projection into the image
  at::Tensor L;          ///< [27] SH lighting
  std::array<float, 3> pose{};         ///< yaw, pitch, roll in degrees (300W-LP sign conventions, Projection.h)
  std::array<double, 136> landmarks{};  ///< 68 x (x, y): GT shape's landmark vertices projected by M
  std::array<uint8_t, 68> visible{};   ///< landmark vertex passes the z-buffer and is inside the image
  cv::Mat image;         ///< 8-bit BGR (sRGB), the composited picture
  cv::Mat coverage;      ///< 8-bit, 255 where the rendered face covers the pixel (before occluders)
  /// The occluder drawn over the image (GroundTruth::occluder): kind (0 none, 1 ellipse,
  /// 2 rectangle), centre x, y, half axes, ellipse angle (degrees).
  std::array<float, 6> occluder{};
  double mouth_open = 0, eyes_closed = 0;  ///< expression amounts in [0, 1]
};

/// The identity part: shape offsets and albedo (before expression).
struct Identity {
  at::Tensor shape_uv;   ///< [3, U, V] mean + identity deformation
  at::Tensor albedo_uv;  ///< [3, U, V] (eyes open)
  at::Tensor eye_closed_albedo_uv;  ///< [3, U, V] same with the eyes painted closed
  at::Tensor mouth_dark;  ///< [U, V] weight of the mouth interior (painted as the lips part)
  std::array<float, 3> skin{};  ///< linear RGB base skin tone (neck)
  std::array<float, 3> hair{};  ///< linear RGB hair colour (brows, beard, the head behind the face)
  double hair_volume = 1;       ///< head/hair silhouette size factor (0: bald: skin-coloured head)
};

/// The identity of a fitted face (`synth --from`): the fit's shape and albedo maps
/// [3, U, V] (masked; albedo clamped to [0, 1]), no expression maps; the head and neck
/// take the face's median skin colour. `mask` is the template's [U, V] face mask.
Identity IdentityFromFit(const at::Tensor& shape_uv, const at::Tensor& albedo_uv, const at::Tensor& mask);

/// The part of a scene that places the face: the caller may override M.
struct Placement {
  double yaw = 0, pitch = 0, roll = 0;  ///< radians
  double scale = 1;                     ///< pixels per model unit
  double tx = 0, ty = 0;                ///< image position of the model origin
};

class FaceGenerator {
 public:
  /// Builds (once) the template at U x V and the per-region UV weight fields.
  FaceGenerator(int uv_rows, int uv_cols);
  ~FaceGenerator();
  const render::FaceTemplate& face_template() const;

  /// A random identity from `rng`; facial hair (beard, moustache, stubble) with probability
  /// `facial_hair_prob`.
  Identity RandomIdentity(std::mt19937_64& rng, double facial_hair_prob = kDefaultFacialHairProb) const;
  /// A random placement in a width x height image under `scene`.
  Placement RandomPlacement(std::mt19937_64& rng, int width, int height, const SceneOptions& scene) const;
  /// M [2, 4] of a placement (render::ComposeM with 300W-LP pose angles).
  static at::Tensor PlacementM(const Placement& p);

  /// Renders `identity` with a random expression, lighting, background and
  /// occluder drawn from `rng`, projected with M [2, 4] into a width x height image.
  SynthFace Render(const Identity& identity, const at::Tensor& M, const Placement& pose, int width, int height,
                   std::mt19937_64& rng, const SceneOptions& scene) const;

  /// Projects the 68 landmark vertices of shape_uv [3, U, V] with M [2, 4]: [68, 2].
  at::Tensor ProjectLandmarks(const at::Tensor& shape_uv, const at::Tensor& M) const;

  /// The mirror image of a face rendered in a `width`-wide image (as 300W-LP's
  /// _Flip copies): image flipped left-right, shape/albedo UV maps flipped
  /// (x negated), M and L mirrored, yaw/roll negated, landmarks mirrored exactly
  /// (x -> width - 1 - x, iBUG partners swapped: io::FlipLandmarks68), which equals
  /// re-projecting the mirrored shape because the template's landmarks are symmetric.
  SynthFace Mirror(const SynthFace& face, int width) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Machine-independent random numbers from mt19937_64's raw output.
double Uniform(std::mt19937_64& rng, double a = 0, double b = 1);
double Normal(std::mt19937_64& rng);
/// A well-mixed 64-bit seed for item `index` of a run seeded `seed` (SplitMix64).
uint64_t ItemSeed(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace facebatch::synth
