#pragma once
// How the networks run in inference (eval mode): levers that change the speed of a
// fit, never its result beyond float rounding. Training mode ignores the first two.
// `facebatch bench` measures each one (docs/bench.md "Levers").

namespace facebatch::model {

struct InferenceOptions {
  /// BatchNorm with its running statistics folded into the preceding convolution.
  bool fold_batchnorm = true;
  /// The decoders' activations in channels-last (NHWC) memory format, oneDNN's
  /// native layout. Off by default: with Debian's LibTorch 1.13 on CPU it made the demo
  /// decoders 8-30 % slower in every `bench --levers` run here (docs/bench.md).
  bool channels_last = false;
  /// FaceModel::DecodeShape/DecodeAlbedo with Heads::kTrueOnly skip the proxy heads
  /// (false: both heads run whatever the caller asks, as before the lever).
  bool skip_unused_proxy_heads = true;
  /// With fold_batchnorm: the larger 4x4 stride-2 transposed convolutions (C_in x C_out x H_in x
  /// W_in at least nets::kPhaseConvMinWork, a 16th of their multiply-adds per image) run as four
  /// 2x2 convolutions, one per output phase
  /// (nets::ConvTranspose4x4Stride2AsPhases): oneDNN's convolutions instead of ATen's GEMM +
  /// col2im path, which LibTorch 1.13 takes for every transposed convolution on CPU.
  bool transposed_as_phases = true;
};

}  // namespace facebatch::model
