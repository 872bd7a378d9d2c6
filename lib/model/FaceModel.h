#pragma once
// The face model (paper sections 3.2-3.4): one interface for the nonlinear
// 3DMM (encoder E + global-local decoders D_S, D_A with proxy and true heads)
// and the linear PCA baseline. Torch stays out of this header (pimpl).
//
// Tensor layouts (all float32, on the model's device):
//   images      [B, 3, S, S] RGB in [0, 1], S = config().image_size (224)
//   f_shape     [B, l_S]     f_albedo [B, l_A]
//   projection  [B, 2, 4]    M, (x, y) = M [X, Y, Z, 1]^T in image pixels
//                            (origin at the centre of the top-left pixel, y down)
//   lighting    [B, 27]      L: 9 SH coefficients per channel, [R0..R8, G0..G8, B0..B8]
//   shape maps  [B, 3, U, V] absolute model-space x, y, z (template mean added)
//   albedo maps [B, 3, U, V] linear RGB (mean albedo added; not clamped)
#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/Inference.h"
#include "model/ModelConfig.h"
#include "render/Template.h"

namespace facebatch::model {

/// Version of the model file format written by this build (schemas/model.md).
constexpr int kModelFormatVersion = 1;
/// Value of the root attribute "format".
constexpr const char* kModelFormat = "facebatch-model";

/// The encoder's estimate for a batch of images (denormalised).
struct Encoding {
  at::Tensor f_shape;     ///< [B, l_S]
  at::Tensor f_albedo;    ///< [B, l_A]
  at::Tensor projection;  ///< [B, 2, 4] M = M_norm * m_std + m_mean
  at::Tensor lighting;    ///< [B, 27]   L = L_norm * l_std + l_mean
};

/// Which heads of a decoder to run.
enum class Heads { kTrueAndProxy, kTrueOnly };

/// One decoder's output: the true component and its proxy (Fig. 2).
struct DecodedMaps {
  at::Tensor value;  ///< S or A   [B, 3, U, V]
  at::Tensor proxy;  ///< S~ or A~ [B, 3, U, V]; the same tensor as value without proxy heads
  /// Residual Delta = true - proxy (eq. 14).
  at::Tensor residual() const;
};

/// Dataset statistics M and L are predicted against (section 3.2; set by training).
struct Normalisation {
  at::Tensor m_mean, m_std;  ///< [8] each, M flattened row-major (2 x 4)
  at::Tensor l_mean, l_std;  ///< [27] each
};

/// Where a model file came from (root attributes of the file).
struct Provenance {
  std::string created;            ///< ISO-8601 UTC, set by Save when empty
  std::string facebatch_version;  ///< set by Save
  std::string command;            ///< the command line that produced the file
  std::string training_data;      ///< description of the training data ("" = untrained)
  int64_t training_steps = 0;
  std::string parent_hash;        ///< weights hash of the model this one was trained from, if any
};

struct ParameterCounts {
  int64_t encoder = 0, shape_decoder = 0, albedo_decoder = 0;
  int64_t total() const { return encoder + shape_decoder + albedo_decoder; }
};

/// A shared handle, like torch modules: copies share weights and state; use
/// Clone() for an independent deep copy.
class FaceModel {
 public:
  /// An untrained model of `config` over `face_template` (its U x V must match
  /// the configuration). Nonlinear: seeded random weights. Linear: template
  /// means and a fixed low-frequency cosine basis (use BuildLinearModel for
  /// a real one). Default normalisation: see DefaultNormalisation().
  static FaceModel Create(const ModelConfig& config, const render::FaceTemplate& face_template, uint64_t seed = 0);
  /// Loads a model file (schemas/model.md); InputError naming the file on any
  /// problem (missing, foreign, truncated, newer version, inconsistent).
  static FaceModel Load(const std::string& path, c10::Device device = c10::Device(c10::kCPU));
  /// Writes the model file (atomically: a temporary file renamed into place).
  void Save(const std::string& path) const;
  /// An independent deep copy (weights, buffers, normalisation, provenance, train/eval mode, device).
  FaceModel Clone() const;

  Encoding Encode(const at::Tensor& images) const;
  /// D_S(f_S), D_A(f_A). With Heads::kTrueOnly a nonlinear model with proxy heads
  /// skips them (DecodedMaps::proxy undefined): what a fit that renders only I(S, A) uses.
  DecodedMaps DecodeShape(const at::Tensor& f_shape, Heads heads = Heads::kTrueAndProxy) const;
  DecodedMaps DecodeAlbedo(const at::Tensor& f_albedo, Heads heads = Heads::kTrueAndProxy) const;
  /// How the networks run in eval mode (shared by every copy of this handle; the
  /// defaults are the fast ones; see model/Inference.h).
  void SetInferenceOptions(const InferenceOptions& options);
  InferenceOptions inference_options() const;

  /// Trainable parameters (empty decoders for the linear kind: PCA bases are buffers).
  std::vector<at::Tensor> parameters() const;
  std::vector<at::Tensor> encoder_parameters() const;
  std::vector<at::Tensor> shape_decoder_parameters() const;
  std::vector<at::Tensor> albedo_decoder_parameters() const;
  ParameterCounts CountParameters() const;

  void train(bool on = true);
  /// Train mode per part: e.g. train(true, false) trains the encoder while the
  /// decoders keep their BatchNorm running statistics (a frozen-decoder stage).
  void train(bool encoder, bool decoders);
  void eval() { train(false); }
  bool is_training() const;
  void to(c10::Device device);
  c10::Device device() const;

  const ModelConfig& config() const;
  const render::FaceTemplate& face_template() const;  ///< tensors on the model's device
  const Normalisation& normalisation() const;
  void SetNormalisation(const Normalisation& n);  ///< shapes [8]/[27] checked (Error)
  Provenance& provenance();
  const Provenance& provenance() const;

  /// SHA-256 (hex) of all weights, buffers and normalisation statistics in a
  /// canonical order; stored in the file as "weights_sha256" and checked on load.
  std::string WeightsHash() const;

  /// Named tensors exactly as stored under /weights (name -> tensor), for
  /// training code that needs the module tree. Parameters share storage.
  std::vector<std::pair<std::string, at::Tensor>> NamedTensors() const;

  struct Impl;
  explicit FaceModel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

/// Default M / L statistics for a template: M_mean maps the template's masked
/// x-extent to 75% of the crop width, centred, with the y flip; L_mean is flat
/// white light (R0 = G0 = B0 = 1 / 0.2820948, i.e. shading 1 with the
/// orthonormal SH basis Y00 = 1 / (2 sqrt(pi))), the others 0; std 10% of the
/// scale for M's 2x3 part, 10 px for its translation, 0.5 for L.
Normalisation DefaultNormalisation(const render::FaceTemplate& face_template, int image_size);

/// Builds a linear (PCA) model from UV maps (the paper's "Linear" baseline):
/// shape_maps, albedo_maps [N, 3, U, V]; rank_shape / rank_albedo components
/// (<= N - 1). Bases are scaled by singular value / sqrt(N - 1), so latents of
/// the data are ~unit variance. The encoder is untrained (seeded).
FaceModel BuildLinearModel(const at::Tensor& shape_maps, const at::Tensor& albedo_maps, int rank_shape,
                           int rank_albedo, const render::FaceTemplate& face_template, ModelConfig config,
                           uint64_t seed = 0);

/// Installs the ATen thread hook (env::SetTorchThreadHook) so
/// env::ConfigureThreads reaches at::set_num_threads. Idempotent; Create and
/// Load call it.
void InstallTorchThreadHook();

}  // namespace facebatch::model
