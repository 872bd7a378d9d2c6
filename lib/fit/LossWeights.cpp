#include "fit/LossWeights.h"

#include "core/Error.h"

#include <torch/torch.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <cmath>
#include <ostream>
#include <sstream>

namespace facebatch::fit {

namespace po = boost::program_options;

namespace {

void CheckWeight(const std::string& prefix, const char* field, double w) {
  if (!std::isfinite(w) || w < 0) {
    throw UsageError(fmt::format("--{}.{} must be a finite number >= 0, got {}", prefix, field, w));
  }
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

void LossWeights::Check(const std::string& prefix) const {
  CheckWeight(prefix, "photometric", photometric);
  CheckWeight(prefix, "perceptual", perceptual);
  CheckWeight(prefix, "landmark", landmark);
  CheckWeight(prefix, "albedo_symmetry", albedo_symmetry);
  CheckWeight(prefix, "albedo_constancy", albedo_constancy);
  CheckWeight(prefix, "shape_smoothness", shape_smoothness);
  CheckWeight(prefix, "residual_shape", residual_shape);
  CheckWeight(prefix, "residual_albedo", residual_albedo);
  CheckWeight(prefix, "residual_symmetry", residual_symmetry);
  CheckWeight(prefix, "latent_shape_prior", latent_shape_prior);
  CheckWeight(prefix, "latent_albedo_prior", latent_albedo_prior);
  CheckWeight(prefix, "constancy_alpha", constancy_alpha);
  if (!std::isfinite(constancy_p) || constancy_p <= 0) {
    throw UsageError(fmt::format("--{}.constancy_p must be > 0, got {}", prefix, constancy_p));
  }
  if (!std::isfinite(landmark_scale) || landmark_scale <= 0) {
    throw UsageError(fmt::format("--{}.landmark_scale must be > 0, got {}", prefix, landmark_scale));
  }
  try {
    ParsePairings(pairings);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("--{}.pairings: {}", prefix, e.what()));
  }
  if (residual_symmetry_mask != "occluded" && residual_symmetry_mask != "visible") {
    throw UsageError(fmt::format("--{}.residual_symmetry_mask must be occluded or visible, got '{}'",
                                 prefix, residual_symmetry_mask));
  }
  if (perceptual_distance != "l2" && perceptual_distance != "cosine") {
    throw UsageError(fmt::format("--{}.perceptual_distance must be l2 or cosine, got '{}'", prefix,
                                 perceptual_distance));
  }
  if (perceptual > 0 && perceptual_model.empty()) {
    throw UsageError(fmt::format(
        "--{0}.perceptual is {1} but no feature network is given (--{0}.perceptual_model)", prefix,
        perceptual));
  }
}

ResidualSymmetryMask LossWeights::SymmetryMask() const {
  return residual_symmetry_mask == "visible" ? ResidualSymmetryMask::kAsGiven
                                             : ResidualSymmetryMask::kOccluded;
}

FeatureDistance LossWeights::PerceptualDistance() const {
  return perceptual_distance == "cosine" ? FeatureDistance::kCosine : FeatureDistance::kL2;
}

std::vector<std::string> LossWeights::PerceptualLayers() const {
  std::vector<std::string> out;
  std::stringstream ss(perceptual_layers);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = Trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

PerceptualLoss::Options LossWeights::PerceptualOptions() const {
  PerceptualLoss::Options o;
  o.model_path = perceptual_model;
  o.layers = PerceptualLayers();
  o.distance = PerceptualDistance();
  return o;
}

void AddLossOptions(po::options_description& options, LossWeights& w, const std::string& prefix) {
  auto name = [&](const char* field) { return prefix + "." + field; };
  // Boost keeps the name strings by copy; the descriptions are literals.
  auto add = [&](const char* field, auto* target, const char* help) {
    options.add_options()(name(field).c_str(), po::value(target)->default_value(*target), help);
  };
  add("photometric", &w.photometric, "weight of the l2,1 photometric loss (eq. 4)");
  add("perceptual", &w.perceptual,
      "lambda_f of the perceptual loss (eqs. 5-6); needs perceptual_model; 0 = off");
  add("landmark", &w.landmark,
      "weight of the landmark loss (eq. 7; mean squared error in units of landmark_scale)");
  add("albedo_symmetry", &w.albedo_symmetry, "weight of the albedo (proxy) symmetry loss (eq. 8)");
  add("albedo_constancy", &w.albedo_constancy,
      "lambda_con of the albedo (proxy) constancy loss (eq. 9)");
  add("shape_smoothness", &w.shape_smoothness,
      "lambda_smo of the shape (proxy) Laplacian smoothness loss (eq. 10)");
  add("residual_shape", &w.residual_shape, "weight of ||S - S_proxy||_1 (eq. 14)");
  add("residual_albedo", &w.residual_albedo, "weight of ||A - A_proxy||_1 (eq. 14)");
  add("residual_symmetry", &w.residual_symmetry,
      "weight of the residual soft symmetry on occluded regions (eq. 16)");
  add("latent_shape_prior", &w.latent_shape_prior, "weight of mean(f_S^2) (latent prior; 0 = off)");
  add("latent_albedo_prior", &w.latent_albedo_prior, "weight of mean(f_A^2) (latent prior; 0 = off)");
  add("constancy_alpha", &w.constancy_alpha, "alpha of the constancy weights exp(-alpha ||dc||) (eq. 9)");
  add("constancy_p", &w.constancy_p, "p of the l2^p norm of the constancy loss (eq. 9)");
  add("landmark_scale", &w.landmark_scale, "landmark error unit in pixels (eq. 7 normaliser)");
  add("pairings", &w.pairings,
      "rendered pairings compared with the input (eq. 15): paper | fit | comma list of "
      "proxy-proxy,proxy-true,true-proxy,true-true (shape-albedo)");
  add("residual_symmetry_mask", &w.residual_symmetry_mask,
      "pixels of eq. 16: occluded (T = 1 - visibility) | visible (T = visibility)");
  add("perceptual_model", &w.perceptual_model, "TorchScript feature network for eq. 5");
  add("perceptual_layers", &w.perceptual_layers,
      "comma list of the network's outputs used in eq. 5 (index or dict key); empty = all");
  add("perceptual_distance", &w.perceptual_distance, "feature distance: l2 (eq. 5) | cosine");
}

}  // namespace facebatch::fit
