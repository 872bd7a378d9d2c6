#pragma once
// The face template: mean shape and mean albedo UV maps that the decoders add
// to (DESIGN.md "Template"). The default comes from MediaPipe's canonical face
// model (Apache-2.0), rasterised into a U x V UV grid at any resolution.
#include <ATen/Tensor.h>

#include <string>

#include "render/Topology.h"

namespace facebatch::render {

struct FaceTemplate {
  FaceTopology topology;
  at::Tensor mean_shape;   ///< [3, U, V] float32, model units; zero outside the mask
  at::Tensor mean_albedo;  ///< [3, U, V] float32, linear RGB in [0, 1]; zero outside the mask
  at::Tensor landmarks68_uv;  ///< [68, 2] float32 (row, col) UV-pixel positions of the 68 landmarks
  std::string source;      ///< provenance, e.g. "mediapipe canonical_face_model (Apache-2.0)"
};

/// The default template at U x V (paper: 192 x 224), built from the committed
/// converted MediaPipe canonical mesh (see README "Template").
FaceTemplate DefaultTemplate(int uv_rows, int uv_cols);

}  // namespace facebatch::render
