#pragma once
// Configuration of a face model (paper sections 3.2-3.4): every size is a
// number here, so the networks can be built without the render module.
// Stored verbatim (as JSON) in the model file, see schemas/model.md.
#include <array>
#include <string>
#include <vector>

#include "render/Topology.h"

namespace facebatch::model {

/// Model kinds behind the one FaceModel interface.
enum class ModelKind { kNonlinear, kLinear };
const char* KindName(ModelKind kind);
ModelKind ParseKind(const std::string& name);  ///< "nonlinear" | "linear"; UsageError otherwise

struct ModelConfig {
  ModelKind kind = ModelKind::kNonlinear;
  std::string preset = "custom";  ///< informative: "paper", "demo" or "custom"

  // --- UV domain (DESIGN.md "Core representation")
  int uv_rows = 96;   ///< U
  int uv_cols = 112;  ///< V
  /// Local regions in UV pixels: left eye, right eye, nose, mouth (render::Region order).
  std::array<render::UVBox, render::kNumRegions> regions{};

  // --- latents
  int latent_shape = 128;   ///< l_S (nonlinear) or number of shape PCA components (linear)
  int latent_albedo = 128;  ///< l_A (nonlinear) or number of albedo PCA components (linear)
  static constexpr int kProjectionSize = 8;  ///< M, 2 x 4
  static constexpr int kLightingSize = 27;   ///< L, 9 SH coefficients x RGB

  // --- encoder E: a 7x7 stride-2 conv to encoder_channels[0], then one stage
  // per further entry (3x3 stride-2 conv + 3x3 conv, each BatchNorm + ELU);
  // four heads (3x3 conv) average-pooled to f_S, f_A, M, L.
  int image_size = 224;
  std::vector<int> encoder_channels = {16, 32, 48, 64, 96};
  /// How the heads read the trunk's last feature map: "pool" (a 3x3 conv per
  /// head, average-pooled: the paper's encoder) or "linear" (the map flattened,
  /// one fully-connected layer per head: position-aware, the demo preset's; see
  /// docs/train.md "Why the first default model's shape did not morph").
  std::string encoder_head = "pool";
  /// Side of the trunk's last feature map (image_size halved once per stride-2 conv).
  int encoder_feature_size() const;

  // --- decoders D_S, D_A (section 3.4)
  /// Global pathway: linear layer to global_channels[0] at
  /// ceil(U / 2^steps) x ceil(V / 2^steps), then steps = global_channels.size()-1
  /// upsampling steps (4x4 stride-2 transposed conv + 3x3 conv, BatchNorm + ELU),
  /// centre-cropped to U x V.
  std::vector<int> global_channels = {96, 64, 48, 32, 16};
  /// Local pathways (one per region): the same, with local_channels.size()-1
  /// steps (paper: 3), sized to their UV box.
  std::vector<int> local_channels = {48, 32, 24, 16};
  /// Channels of the fusion convolution and of each output branch.
  int fusion_channels = 32;
  bool global_local = true;  ///< false: global pathway only (the paper's "Nonlinear" row)
  bool proxy = true;         ///< false: one output head per decoder, proxy == true

  int global_steps() const { return static_cast<int>(global_channels.size()) - 1; }
  int local_steps() const { return static_cast<int>(local_channels.size()) - 1; }

  /// Throws UsageError naming the bad field.
  void Check() const;
  /// "nonlinear" (global only, no proxy), "gl" (global-local) or "gl-proxy" (paper).
  std::string AblationName() const;
  void SetAblation(const std::string& name);  ///< UsageError on unknown names

  std::string ToJson() const;                       ///< pretty JSON, all fields
  static ModelConfig FromJson(const std::string& json);  ///< throws Error on missing/bad fields
  bool operator==(const ModelConfig& other) const { return ToJson() == other.ToJson(); }
};

/// Region boxes as fixed fractions of the UV domain (used until a template
/// provides its own): rows 30-50% / cols 18-46% (left eye; right eye mirrored),
/// nose rows 38-68% cols 36-64%, mouth rows 66-86% cols 30-70%.
std::array<render::UVBox, render::kNumRegions> DefaultRegions(int uv_rows, int uv_cols);

/// Presets: "paper" (192 x 224 UV, l_S = l_A = 320, five global upsampling
/// steps, encoder 32-64-128-192-256) and "demo" (96 x 112 UV, 4 steps, narrow;
/// sized for 2 CPU cores, see docs/model.md). UsageError on unknown names.
ModelConfig Preset(const std::string& name);

/// Parses "RxC" (e.g. "192x224"); UsageError otherwise.
std::pair<int, int> ParseUvSize(const std::string& text);

}  // namespace facebatch::model
