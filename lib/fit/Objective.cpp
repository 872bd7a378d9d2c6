#include "fit/Objective.h"

#include "core/Error.h"

#include <torch/torch.h>

namespace facebatch::fit {

LossTerms EvaluateObjective(const ObjectiveInputs& in, const LossWeights& w,
                            const PerceptualLoss* perceptual,
                            std::vector<std::pair<Pairing, Rendering>>* renderings) {
  if (!in.shape.defined() || !in.albedo.defined() || !in.mask.defined()) {
    throw Error("EvaluateObjective: shape, albedo and mask are required");
  }
  const bool proxies = in.shape_proxy.defined() && in.albedo_proxy.defined();
  LossTerms terms;

  // Reconstruction (eqs. 4-6, 15)
  if (w.photometric > 0 || w.perceptual > 0) {
    if (!in.input.defined() || !in.render) {
      throw UsageError("EvaluateObjective: the reconstruction terms need the input images and a renderer");
    }
    if (w.perceptual > 0 && perceptual == nullptr) {
      throw UsageError("EvaluateObjective: a perceptual weight is set but no feature network is loaded");
    }
    const unsigned pairings = w.PairingBits();
    if (!proxies && (pairings & ~unsigned(kTrueShapeTrueAlbedo))) {
      throw UsageError("EvaluateObjective: pairings " + PairingsToString(pairings) +
                       " need shape and albedo proxies, which this model does not give");
    }
    for (Pairing p : {kProxyShapeProxyAlbedo, kProxyShapeTrueAlbedo, kTrueShapeProxyAlbedo,
                      kTrueShapeTrueAlbedo}) {
      if (!(pairings & p)) continue;
      const bool true_shape = p == kTrueShapeProxyAlbedo || p == kTrueShapeTrueAlbedo;
      const bool true_albedo = p == kProxyShapeTrueAlbedo || p == kTrueShapeTrueAlbedo;
      Rendering r = in.render(true_shape ? in.shape : in.shape_proxy,
                              true_albedo ? in.albedo : in.albedo_proxy);
      const std::string suffix = std::string(":") + PairingName(p);
      if (w.photometric > 0) terms.Add("photometric" + suffix, w.photometric, PhotometricLoss(r.image, in.input, r.coverage));
      if (w.perceptual > 0) terms.Add("perceptual" + suffix, w.perceptual, (*perceptual)(r.image, in.input));
      if (renderings != nullptr) renderings->emplace_back(p, std::move(r));
    }
  }

  // Landmarks (eq. 7)
  if (w.landmark > 0 && in.landmarks.defined() && in.landmarks_target.defined()) {
    terms.Add("landmark", w.landmark,
              LandmarkLoss(in.landmarks, in.landmarks_target, in.landmark_weights, w.landmark_scale));
  }

  // Regularisers on the proxies (eq. 13), or on S, A without proxies (eq. 12)
  const auto& reg_albedo = proxies ? in.albedo_proxy : in.albedo;
  const auto& reg_shape = proxies ? in.shape_proxy : in.shape;
  if (w.albedo_symmetry > 0) terms.Add("albedo_symmetry", w.albedo_symmetry, AlbedoSymmetryLoss(reg_albedo, in.mask));
  if (w.albedo_constancy > 0 && in.input_uv.defined()) {
    terms.Add("albedo_constancy", w.albedo_constancy,
              AlbedoConstancyLoss(reg_albedo, in.input_uv, in.input_uv_validity, in.mask, w.constancy_alpha,
                                  w.constancy_p));
  }
  if (w.shape_smoothness > 0) terms.Add("shape_smoothness", w.shape_smoothness, ShapeSmoothnessLoss(reg_shape, in.mask));

  // Residuals (eqs. 14, 16)
  if (proxies) {
    if (w.residual_shape > 0) {
      terms.Add("residual_shape", w.residual_shape, ResidualMagnitudeLoss(in.shape, in.shape_proxy, in.mask));
    }
    if (w.residual_albedo > 0) {
      terms.Add("residual_albedo", w.residual_albedo, ResidualMagnitudeLoss(in.albedo, in.albedo_proxy, in.mask));
    }
    if (w.residual_symmetry > 0 && in.visibility.defined()) {
      terms.Add("residual_symmetry", w.residual_symmetry,
                ResidualSymmetryLoss(in.shape, in.shape_proxy, in.visibility, in.mask, w.SymmetryMask()));
    }
  }

  // Latent priors
  if (w.latent_shape_prior > 0 && in.latent_shape.defined()) {
    terms.Add("latent_shape_prior", w.latent_shape_prior, LatentPriorLoss(in.latent_shape));
  }
  if (w.latent_albedo_prior > 0 && in.latent_albedo.defined()) {
    terms.Add("latent_albedo_prior", w.latent_albedo_prior, LatentPriorLoss(in.latent_albedo));
  }
  if (terms.empty()) throw UsageError("EvaluateObjective: every term is off (all weights 0 or inputs missing)");
  return terms;
}

}  // namespace facebatch::fit
