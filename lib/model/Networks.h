#pragma once
// The networks of the nonlinear 3DMM (paper sections 3.2-3.4, Fig. 2-3).
// Internal header of the model module (includes torch); users go through
// model/FaceModel.h. Tests include it to reach the pathways.
#include <torch/torch.h>

#include "model/Inference.h"
#include "model/ModelConfig.h"

namespace facebatch::model::nets {

/// A transposed convolution with a 4x4 kernel, stride 2 and padding 1 (weight [C_in, C_out, 4, 4])
/// computed as four ordinary 2x2 convolutions, one per output phase (row parity a, column parity
/// b): y[2m + a, 2n + b] reads input rows m - 1 + a and m + a (kernel rows 3 - a and 1 - a) and
/// the same for columns. The same result as torch::conv_transpose2d up to float rounding, with
/// the same multiply-adds.
torch::Tensor ConvTranspose4x4Stride2AsPhases(const torch::Tensor& x, const torch::Tensor& weight,
                                              const torch::Tensor& bias);
/// InferenceOptions::transposed_as_phases applies from this C_in x C_out x H_in x W_in up: below
/// it the four convolutions' overhead costs more than ATen's path saves (measured on the demo
/// decoders, docs/bench.md).
constexpr int64_t kPhaseConvMinWork = 400000;

/// Conv (or transposed conv) + BatchNorm + ELU. In eval mode, with
/// `inference.fold_batchnorm`, BatchNorm's running statistics are folded into
/// the convolution's weight and bias at every call (an affine map per output
/// channel: one pass over the activations less forward and backward; the
/// weights themselves are never changed, so training can resume).
struct ConvBnEluImpl : torch::nn::Module {
  ConvBnEluImpl(int in, int out, int kernel, int stride, int padding, bool transposed);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::ConvTranspose2d tconv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  int stride, padding;
  InferenceOptions inference;
};
TORCH_MODULE(ConvBnElu);

/// Encoder E: image [B,3,S,S] in [0,1] -> f_S [B,l_S], f_A [B,l_A], M_norm [B,8], L_norm [B,27]
/// (M and L normalised by the dataset statistics, see FaceModel).
struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const ModelConfig& config);
  std::array<torch::Tensor, 4> forward(const torch::Tensor& images);
  torch::nn::Sequential trunk{nullptr};
  torch::nn::Conv2d head_shape{nullptr}, head_albedo{nullptr}, head_projection{nullptr}, head_lighting{nullptr};
  /// encoder_head "linear": the same four heads as fully-connected layers on the flattened map.
  torch::nn::Linear fc_shape{nullptr}, fc_albedo{nullptr}, fc_projection{nullptr}, fc_lighting{nullptr};
};
TORCH_MODULE(Encoder);

/// An upsampling pathway (section 3.4): linear layer from the latent to
/// channels[0] x base_rows x base_cols, then channels.size()-1 steps of
/// (4x4 stride-2 transposed conv + 3x3 conv), centre-cropped to rows x cols.
struct PathwayImpl : torch::nn::Module {
  PathwayImpl(int latent, const std::vector<int>& channels, int rows, int cols);
  torch::Tensor forward(const torch::Tensor& latent);
  int rows, cols, base_rows, base_cols, base_channels;
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm2d fc_bn{nullptr};
  torch::nn::Sequential steps{nullptr};
  InferenceOptions inference;  ///< channels_last: the pathway's activations in NHWC (eval mode)
};
TORCH_MODULE(Pathway);

/// What a decoder produces: offsets from the template (or, for the linear
/// kind, absolute maps), both [B,3,U,V]. proxy is `value` itself when the
/// model has no proxy head.
struct DecoderOutput {
  torch::Tensor value;
  torch::Tensor proxy;
  torch::Tensor global_features;  ///< [B,Cg,U,V], only when asked for
  torch::Tensor local_features;   ///< [B,Cl,U,V] fused local pathways, only when asked for
};

/// Base of both decoder kinds. With `proxy` false the proxy head is not run
/// (DecoderOutput::proxy undefined) where the kind has one.
struct MapDecoder : torch::nn::Module {
  virtual DecoderOutput Decode(const torch::Tensor& latent, bool keep_features = false, bool proxy = true) = 0;
};

/// Sets the inference options of every ConvBnElu and Pathway in `module`'s tree.
void SetInference(torch::nn::Module& module, const InferenceOptions& options);

/// D_S / D_A of the nonlinear kind: global pathway (+ four local pathways
/// fused by max-pooling where their boxes overlap, zero elsewhere) -> fusion
/// conv -> true head and proxy head (Fig. 2-3).
struct GlobalLocalDecoder : MapDecoder {
  GlobalLocalDecoder(const ModelConfig& config, int latent);
  DecoderOutput Decode(const torch::Tensor& latent, bool keep_features = false, bool proxy = true) override;
  /// Places the four local outputs into the U x V map (zero padding) and fuses
  /// overlaps by max-pooling. Exposed for tests.
  torch::Tensor FuseLocal(const std::vector<torch::Tensor>& locals) const;
  ModelConfig config;
  Pathway global{nullptr};
  std::vector<Pathway> locals;
  ConvBnElu fusion{nullptr};
  torch::nn::Sequential head_true{nullptr}, head_proxy{nullptr};
};

/// The linear kind (PCA): value = mean + basis^T f; proxy == value.
struct LinearDecoder : MapDecoder {
  LinearDecoder(int rank, int uv_rows, int uv_cols);
  DecoderOutput Decode(const torch::Tensor& latent, bool keep_features = false, bool proxy = true) override;
  torch::Tensor mean;   ///< [3,U,V] buffer
  torch::Tensor basis;  ///< [K,3,U,V] buffer
};

/// The whole model as one module tree: encoder, shape_decoder, albedo_decoder
/// (parameter names "encoder.trunk.0.conv.weight", ...).
struct ModelNetImpl : torch::nn::Module {
  explicit ModelNetImpl(const ModelConfig& config);
  Encoder encoder{nullptr};
  std::shared_ptr<MapDecoder> shape_decoder, albedo_decoder;
};
TORCH_MODULE(ModelNet);

}  // namespace facebatch::model::nets
