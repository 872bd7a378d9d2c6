#pragma once
// Weights and parameters of the objective (paper eqs. 6, 11-16) and their
// binding to Boost.Program_options (command line and INI files).
#include "fit/LossTerms.h"
#include "fit/Losses.h"

#include <string>
#include <vector>

namespace boost::program_options {
class options_description;
}

namespace facebatch::fit {

/// Every weight of the objective. A weight of 0 switches a term off (callers
/// skip its evaluation). Paper defaults where the paper gives one; the paper
/// says only that "lambda values are selected to bring losses to similar
/// magnitudes" (section 4), so the others are ours, chosen with the
/// normalisations of Losses.h so that each term is O(0.01-0.1) for a
/// reasonable fit. Bound to options "<prefix>.<field>" by AddLossOptions.
struct LossWeights {
  // --- weights
  double photometric = 1.0;        ///< eq. 4 / eq. 6: L_rec^i (unit weight in eq. 6)
  double perceptual = 0.0;         ///< eq. 6: lambda_f on L_rec^f (eq. 5); off: needs a user network
  double landmark = 100.0;         ///< eq. 7 (unit weight in eq. 11; ours: 100 since LandmarkLoss is
                                   ///< in units of landmark_scale, a 5 px error at 224 px -> 0.05)
  double albedo_symmetry = 1.0;    ///< eq. 8 on the albedo proxy (unit weight in eqs. 12-13)
  double albedo_constancy = 1.0;   ///< eq. 9 on the albedo proxy: lambda_con (not given; ours)
  double shape_smoothness = 1.0;   ///< eq. 10 on the shape proxy: lambda_smo (not given; ours)
  double residual_shape = 1.0;     ///< eq. 14, ||S - S~||_1 part (unit weight: L_res is a plain sum)
  double residual_albedo = 1.0;    ///< eq. 14, ||A - A~||_1 part
  double residual_symmetry = 1.0;  ///< eq. 16 (weight not given; ours)
  double latent_shape_prior = 0.0;   ///< mean f_S^2 (issue 7's optional latent prior; not in the paper)
  double latent_albedo_prior = 0.0;  ///< mean f_A^2

  // --- parameters of the terms
  double constancy_alpha = 15.0;  ///< eq. 9 alpha (Tran & Liu 2018: 15)
  double constancy_p = 0.8;       ///< eq. 9 p of the l2^p norm (Tran & Liu 2018: 0.8)
  double landmark_scale = 224.0;  ///< eq. 7 normaliser in pixels (the crop width)
  /// eq. 15 pairings: "paper" (the three of eq. 15), "fit" (I(S, A) only) or
  /// a comma list of proxy-proxy, proxy-true, true-proxy, true-true
  /// (shape-albedo). Train defaults to "paper"; fit sets "fit" before binding.
  std::string pairings = "paper";
  /// eq. 16 mask: "occluded" (T = 1 - visibility, our reading) or "visible".
  std::string residual_symmetry_mask = "occluded";
  std::string perceptual_model;         ///< TorchScript feature network (eq. 5's phi)
  std::string perceptual_layers;        ///< comma list of its outputs (eq. 5's C); empty: all
  std::string perceptual_distance = "l2";  ///< "l2" (eq. 5) or "cosine"

  /// Throws UsageError naming the option ("<prefix>.<field>") on a bad value:
  /// negative or non-finite weights, p <= 0, alpha < 0, scale <= 0, unknown
  /// pairings/mask/distance, a perceptual weight without a model.
  void Check(const std::string& prefix = "loss") const;

  unsigned PairingBits() const { return ParsePairings(pairings); }
  ResidualSymmetryMask SymmetryMask() const;
  FeatureDistance PerceptualDistance() const;
  /// perceptual_layers split at commas.
  std::vector<std::string> PerceptualLayers() const;
  /// The options of PerceptualLoss from the fields above.
  PerceptualLoss::Options PerceptualOptions() const;
};

/// Binds every field of `weights` as "<prefix>.<field>" (e.g.
/// --loss.landmark 50, or `landmark = 50` under `[loss]` in an INI file), with
/// the struct's current values as defaults. Call weights.Check() after parsing.
void AddLossOptions(boost::program_options::options_description& options, LossWeights& weights,
                    const std::string& prefix = "loss");


}  // namespace facebatch::fit
