#include "model/Networks.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace facebatch::model::nets {
namespace nn = torch::nn;

ConvBnEluImpl::ConvBnEluImpl(int in, int out, int kernel, int stride_, int padding_, bool transposed)
    : stride(stride_), padding(padding_) {
  if (transposed)
    tconv = register_module("tconv", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in, out, kernel)
                                                             .stride(stride).padding(padding).bias(false)));
  else
    conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)));
  bn = register_module("bn", nn::BatchNorm2d(out));
}

torch::Tensor ConvTranspose4x4Stride2AsPhases(const torch::Tensor& x, const torch::Tensor& weight,
                                              const torch::Tensor& bias) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), cout = weight.size(1);
  // Output phase a (row parity) reads the zero-padded input rows m + a and m + a + 1, with the
  // kernel rows kTap[a][0] and kTap[a][1]; the same for columns.
  static const int64_t kTap[2][2] = {{3, 1}, {2, 0}};
  const auto padded = torch::constant_pad_nd(x, {1, 1, 1, 1}, 0.0);
  std::vector<torch::Tensor> rows;
  for (int a = 0; a < 2; ++a) {
    const auto wa = torch::stack({weight.select(2, kTap[a][0]), weight.select(2, kTap[a][1])}, 2);  // [in, out, 2, 4]
    std::vector<torch::Tensor> cols;
    for (int b = 0; b < 2; ++b) {
      const auto wab = torch::stack({wa.select(3, kTap[b][0]), wa.select(3, kTap[b][1])}, 3);  // [in, out, 2, 2]
      const auto input = padded.slice(2, a, a + H + 1).slice(3, b, b + W + 1);
      cols.push_back(torch::conv2d(input, wab.transpose(0, 1).contiguous(), bias));  // [B, out, H, W]
    }
    rows.push_back(torch::stack(cols, -1));  // [B, out, H, W, 2 (b)]
  }
  return torch::stack(rows, 3).reshape({B, cout, 2 * H, 2 * W});  // [B, out, H, 2 (a), W, 2 (b)]
}

torch::Tensor ConvBnEluImpl::forward(const torch::Tensor& x) {
  if (is_training() || !inference.fold_batchnorm) return torch::elu(bn(conv ? conv(x) : tconv(x)));
  // Eval mode: BN(y) = (y - mean) * scale + beta with scale = gamma / sqrt(var + eps), an
  // affine map per output channel, folded into the (bias-free) convolution.
  auto scale = bn->weight * torch::rsqrt(bn->running_var + bn->options.eps());
  auto bias = bn->bias - bn->running_mean * scale;
  // ELU in place on the convolution's fresh output (its backward needs only that output, and the
  // convolution's backward does not need it): one activation-sized allocation and pass less.
  if (conv) {
    auto y = torch::conv2d(x, conv->weight * scale.view({-1, 1, 1, 1}), bias, stride, padding);
    return torch::elu_(y);
  }
  // A transposed convolution's weight is [in, out, kh, kw]: the output channel is dim 1.
  const auto w = tconv->weight * scale.view({1, -1, 1, 1});
  const bool phases = inference.transposed_as_phases && stride == 2 && padding == 1 && w.size(2) == 4 &&
                      w.size(3) == 4 && w.size(0) * w.size(1) * x.size(2) * x.size(3) >= kPhaseConvMinWork;
  auto y = phases ? ConvTranspose4x4Stride2AsPhases(x, w, bias) : torch::conv_transpose2d(x, w, bias, stride, padding);
  return torch::elu_(y);
}

// ------------------------------------------------------------------ encoder

EncoderImpl::EncoderImpl(const ModelConfig& c) {
  const auto& ch = c.encoder_channels;
  trunk = nn::Sequential();
  trunk->push_back(ConvBnElu(3, ch[0], 7, 2, 3, false));  // the 7x7 first layer
  for (size_t i = 1; i < ch.size(); ++i) {
    trunk->push_back(ConvBnElu(ch[i - 1], ch[i], 3, 2, 1, false));  // stride-2 downsampling
    trunk->push_back(ConvBnElu(ch[i], ch[i], 3, 1, 1, false));
  }
  register_module("trunk", trunk);
  int last = ch.back();
  if (c.encoder_head == "linear") {
    const int in = last * c.encoder_feature_size() * c.encoder_feature_size();
    auto fc = [&](const char* name, int out) { return register_module(name, nn::Linear(in, out)); };
    fc_shape = fc("head_shape", c.latent_shape);
    fc_albedo = fc("head_albedo", c.latent_albedo);
    fc_projection = fc("head_projection", ModelConfig::kProjectionSize);
    fc_lighting = fc("head_lighting", ModelConfig::kLightingSize);
    return;
  }
  auto head = [&](const char* name, int out) {
    return register_module(name, nn::Conv2d(nn::Conv2dOptions(last, out, 3).padding(1)));
  };
  head_shape = head("head_shape", c.latent_shape);
  head_albedo = head("head_albedo", c.latent_albedo);
  head_projection = head("head_projection", ModelConfig::kProjectionSize);
  head_lighting = head("head_lighting", ModelConfig::kLightingSize);
}

std::array<torch::Tensor, 4> EncoderImpl::forward(const torch::Tensor& images) {
  auto h = trunk->forward(images);
  if (fc_shape) {
    auto flat = h.flatten(1);
    return {fc_shape(flat), fc_albedo(flat), fc_projection(flat), fc_lighting(flat)};
  }
  auto pool = [](const torch::Tensor& t) { return t.mean({2, 3}); };  // average pooling
  return {pool(head_shape(h)), pool(head_albedo(h)), pool(head_projection(h)), pool(head_lighting(h))};
}

// ------------------------------------------------------------------ pathways

PathwayImpl::PathwayImpl(int latent, const std::vector<int>& ch, int rows_, int cols_) : rows(rows_), cols(cols_) {
  int nsteps = static_cast<int>(ch.size()) - 1;
  int scale = 1 << nsteps;
  // Sizes not divisible by 2^steps: start from the ceiling and centre-crop at the end.
  base_rows = (rows + scale - 1) / scale;
  base_cols = (cols + scale - 1) / scale;
  base_channels = ch[0];
  fc = register_module("fc", nn::Linear(latent, base_channels * base_rows * base_cols));
  fc_bn = register_module("fc_bn", nn::BatchNorm2d(base_channels));
  steps = nn::Sequential();
  for (size_t i = 1; i < ch.size(); ++i) {
    steps->push_back(ConvBnElu(ch[i - 1], ch[i], 4, 2, 1, true));  // fractionally-strided, exact 2x
    steps->push_back(ConvBnElu(ch[i], ch[i], 3, 1, 1, false));
  }
  register_module("steps", steps);
}

static torch::Tensor CentreCrop(const torch::Tensor& x, int rows, int cols) {
  int64_t r0 = (x.size(2) - rows) / 2, c0 = (x.size(3) - cols) / 2;
  return x.slice(2, r0, r0 + rows).slice(3, c0, c0 + cols);
}

torch::Tensor PathwayImpl::forward(const torch::Tensor& latent) {
  auto h = fc(latent).view({latent.size(0), base_channels, base_rows, base_cols});
  h = torch::elu(fc_bn(h));
  if (!is_training() && inference.channels_last) h = h.contiguous(torch::MemoryFormat::ChannelsLast);
  h = steps->forward(h);
  return CentreCrop(h, rows, cols);
}

// ------------------------------------------------------------------ decoders

static nn::Sequential OutputBranch(int in, int mid) {
  nn::Sequential s;
  s->push_back(ConvBnElu(in, mid, 3, 1, 1, false));
  nn::Conv2d out(nn::Conv2dOptions(mid, 3, 3).padding(1));
  {
    torch::NoGradGuard g;  // small initial offsets: an untrained model stays near the template
    out->weight.mul_(0.1);
    out->bias.zero_();
  }
  s->push_back(out);
  return s;
}

GlobalLocalDecoder::GlobalLocalDecoder(const ModelConfig& c, int latent) : config(c) {
  global = register_module("global", Pathway(latent, c.global_channels, c.uv_rows, c.uv_cols));
  int fused_in = c.global_channels.back();
  if (c.global_local) {
    static const char* names[render::kNumRegions] = {"local_left_eye", "local_right_eye", "local_nose", "local_mouth"};
    for (int i = 0; i < render::kNumRegions; ++i)
      locals.push_back(register_module(names[i], Pathway(latent, c.local_channels, c.regions[i].rows, c.regions[i].cols)));
    fused_in += c.local_channels.back();
  }
  fusion = register_module("fusion", ConvBnElu(fused_in, c.fusion_channels, 3, 1, 1, false));
  head_true = register_module("head_true", OutputBranch(c.fusion_channels, c.fusion_channels));
  if (c.proxy) head_proxy = register_module("head_proxy", OutputBranch(c.fusion_channels, c.fusion_channels));
}

torch::Tensor GlobalLocalDecoder::FuseLocal(const std::vector<torch::Tensor>& outs) const {
  // Zero padding into the full map, max-pooling where boxes overlap (section 3.4). The max
  // is taken only inside the boxes' union (about a third of the demo map): pad each local
  // output to the union with -inf, take the running maximum, put zeros where no box is,
  // then zero-pad the union to the full map. The same values and gradients as padding all
  // four to the full map and reducing their stack (the first version: 3-4x the time of a
  // decoder's fusion convolution, forward and backward, on the demo preset).
  const double ninf = -std::numeric_limits<double>::infinity();
  int r0 = config.uv_rows, r1 = 0, c0 = config.uv_cols, c1 = 0;
  for (const auto& b : config.regions) {
    r0 = std::min(r0, b.row0), r1 = std::max(r1, b.row0 + b.rows);
    c0 = std::min(c0, b.col0), c1 = std::max(c1, b.col0 + b.cols);
  }
  torch::Tensor fused;
  for (int i = 0; i < render::kNumRegions; ++i) {
    const auto& b = config.regions[i];
    auto p = torch::constant_pad_nd(outs[i], {b.col0 - c0, c1 - b.col0 - b.cols, b.row0 - r0, r1 - b.row0 - b.rows}, ninf);
    fused = fused.defined() ? torch::maximum(fused, p) : p;
  }
  fused = torch::where(torch::isinf(fused), torch::zeros({}, fused.options()), fused);
  return torch::constant_pad_nd(fused, {c0, config.uv_cols - c1, r0, config.uv_rows - r1}, 0.0);
}

void SetInference(torch::nn::Module& module, const InferenceOptions& options) {
  for (auto& m : module.modules()) {
    if (auto* c = m->as<ConvBnEluImpl>()) c->inference = options;
    if (auto* p = m->as<PathwayImpl>()) p->inference = options;
  }
}

DecoderOutput GlobalLocalDecoder::Decode(const torch::Tensor& latent, bool keep, bool proxy) {
  DecoderOutput out;
  auto g = global->forward(latent);
  torch::Tensor feat = g;
  if (config.global_local) {
    std::vector<torch::Tensor> outs;
    for (auto& p : locals) outs.push_back(p->forward(latent));
    auto l = FuseLocal(outs);
    feat = torch::cat({g, l}, 1);  // concatenated with the global features (section 3.4)
    if (keep) out.local_features = l;
  }
  if (keep) out.global_features = g;
  auto f = fusion(feat);
  // The maps leave in the standard (contiguous NCHW) layout whatever the activations'.
  out.value = head_true->forward(f).contiguous();
  if (config.proxy)
    out.proxy = proxy ? head_proxy->forward(f).contiguous() : torch::Tensor();
  else
    out.proxy = out.value;
  return out;
}

LinearDecoder::LinearDecoder(int rank, int U, int V) {
  mean = register_buffer("mean", torch::zeros({3, U, V}));
  basis = register_buffer("basis", torch::zeros({rank, 3, U, V}));
}

DecoderOutput LinearDecoder::Decode(const torch::Tensor& f, bool, bool) {
  DecoderOutput out;
  auto flat = torch::matmul(f, basis.reshape({basis.size(0), -1}));
  out.value = mean.unsqueeze(0) + flat.view({f.size(0), mean.size(0), mean.size(1), mean.size(2)});
  out.proxy = out.value;
  return out;
}

ModelNetImpl::ModelNetImpl(const ModelConfig& c) {
  encoder = register_module("encoder", Encoder(c));
  if (c.kind == ModelKind::kNonlinear) {
    shape_decoder = register_module("shape_decoder", std::make_shared<GlobalLocalDecoder>(c, c.latent_shape));
    albedo_decoder = register_module("albedo_decoder", std::make_shared<GlobalLocalDecoder>(c, c.latent_albedo));
  } else {
    shape_decoder = register_module("shape_decoder", std::make_shared<LinearDecoder>(c.latent_shape, c.uv_rows, c.uv_cols));
    albedo_decoder = register_module("albedo_decoder", std::make_shared<LinearDecoder>(c.latent_albedo, c.uv_rows, c.uv_cols));
  }
}

}  // namespace facebatch::model::nets
