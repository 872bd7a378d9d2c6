#pragma once
// Latent targets of supervised pre-training (issue 14).
//
// Diagnosis (docs/train.md "Why the first default model's shape did not morph"):
// pre-training the encoder and the decoders jointly on the map losses alone lets
// the decoder settle on the mean map before the encoder's f_S carries any
// information; the map loss's gradient to the encoder then passes through a
// decoder that ignores f_S, and the model stays at the mean face. The remedy here
// fixes the meaning of the latent spaces first, from the ground truth itself:
// the PCA coefficients of every training item's ground-truth map (whitened by
// one common factor, so the leading components keep their larger variance) are
// its latent target. During pre-training the decoders learn code -> map
// (teacher forcing: an item with ground truth is decoded from its target code)
// and the encoder regresses the codes (mean squared error), a dense,
// well-conditioned signal; the phase of the paper's self-supervised objective
// then trains everything end to end from the encoder's own latents.
#include <ATen/Tensor.h>

#include <string>

namespace facebatch::train {

class Dataset;

struct LatentTargets {
  at::Tensor mean;   ///< [D] float32, D = 3 U V: the mean map
  at::Tensor basis;  ///< [k, D] float32: orthonormal principal directions, k <= latent
  double scale = 1;  ///< code = (map - mean) . basis / scale
  int latent = 0;    ///< the model's latent size (codes are padded with zeros to it)
  bool defined() const { return basis.defined() && basis.size(0) > 0; }
  /// Codes [B, latent] of maps [B, 3, U, V] (on the maps' device).
  at::Tensor Codes(const at::Tensor& maps) const;
  void Save(const std::string& path) const;  ///< LibTorch archive
  static LatentTargets Load(const std::string& path);  ///< InputError naming the file
};

/// PCA of `maps` [N, 3, U, V] with k = min(latent, N - 1) components (those with
/// non-negligible variance), scale = sqrt of the mean variance of the kept
/// components. Computed from the N x N Gram matrix (float64).
LatentTargets BuildLatentTargets(const at::Tensor& maps, int latent);

/// The ground-truth shape (normalised as the dataset gives it) and albedo maps of
/// at most `max_items` items of `dataset` that have ground truth, in a seeded
/// order: {shape [n, 3, U, V], albedo [n, 3, U, V]}; n = 0 without ground truth.
std::pair<at::Tensor, at::Tensor> GroundTruthMaps(const Dataset& dataset, int64_t max_items, uint64_t seed);

}  // namespace facebatch::train
