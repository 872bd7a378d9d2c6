#pragma once
// The paper's full objective for one batch, assembled from the terms of
// Losses.h with the weights of LossWeights:
//   L = sum_{pairings} L_rec (eqs. 4-6, 15) + L_lan (eq. 7)
//       + L_reg on the proxies (eq. 13: eqs. 8, 9, 10)
//       + L_res (eq. 14) + L_res-sym (eq. 16) [+ latent priors].
// Used by both train (pairings "paper") and fit (pairings "fit" = I(S, A)).
#include "fit/LossTerms.h"
#include "fit/LossWeights.h"
#include "fit/Losses.h"

#include <ATen/Tensor.h>

#include <utility>
#include <vector>

namespace facebatch::fit {

/// Inputs of the objective. Required: shape, albedo, mask, and input + render
/// when a photometric/perceptual weight is > 0. Every other tensor is optional:
/// a term is evaluated when its weight is > 0 AND its inputs are given
/// (e.g. no landmarks -> no landmark term), so one struct serves train and fit.
struct ObjectiveInputs {
  at::Tensor input;          ///< [B, 3, H, W] the images, RGB in [0, 1]
  RenderFn render;           ///< renders (shape map, albedo map) -> image + coverage
  at::Tensor shape;          ///< [B, 3, U, V] S
  at::Tensor albedo;         ///< [B, 3, U, V] A
  at::Tensor shape_proxy;    ///< [B, 3, U, V] S~ (optional; without proxies the
  at::Tensor albedo_proxy;   ///< [B, 3, U, V] A~  regularisers act on S, A: eq. 12)
  at::Tensor mask;           ///< [U, V] bool face mask
  at::Tensor landmarks;          ///< [B, K, 2] projected model landmarks (ProjectPoints)
  at::Tensor landmarks_target;   ///< [B, K, 2] ground truth / detected landmarks
  at::Tensor landmark_weights;   ///< [B, K] visibility/confidence (optional)
  at::Tensor input_uv;           ///< [B, 3, U, V] input unwrapped to UV (eq. 9 chromaticity)
  at::Tensor input_uv_validity;  ///< [B, 1, U, V] where input_uv is valid (optional)
  at::Tensor visibility;         ///< [B, 1, U, V] eq. 16 (VisibilityFromNormals)
  at::Tensor latent_shape;       ///< [B, lS] f_S (latent prior)
  at::Tensor latent_albedo;      ///< [B, lA] f_A
};

/// Evaluates the weighted objective. Term names: "photometric:<pairing>",
/// "perceptual:<pairing>" (pairing names as PairingName), "landmark",
/// "albedo_symmetry", "albedo_constancy", "shape_smoothness",
/// "residual_shape", "residual_albedo", "residual_symmetry",
/// "latent_shape_prior", "latent_albedo_prior". Throws UsageError when a
/// selected pairing needs proxies that are not given, or a perceptual weight
/// is set without a network. `renderings`, if given, receives each pairing's
/// rendering (for metrics and visualisation).
LossTerms EvaluateObjective(const ObjectiveInputs& in, const LossWeights& weights,
                            const PerceptualLoss* perceptual = nullptr,
                            std::vector<std::pair<Pairing, Rendering>>* renderings = nullptr);

}  // namespace facebatch::fit
