#pragma once
// A synthetic face template (a half-ellipsoid "face" over an elliptic UV
// mask) with a complete grid topology, 68 landmarks and region boxes. Used by
// tests, and by `model init --template synthetic` (the default until the
// render module's MediaPipe template is available). Units: the mask spans
// x in [-1, 1] (model units), y up, z towards the camera.
#include "render/Template.h"

namespace facebatch::model {

render::FaceTemplate SyntheticTemplate(int uv_rows, int uv_cols);

/// The grid topology of a mask (DESIGN.md "Topology = the UV grid"):
/// vertex ids in row-major order, two counter-clockwise triangles per fully
/// masked 2x2 block, per-vertex UVs, and left-right flip ids.
render::FaceTopology GridTopology(const at::Tensor& mask);

}  // namespace facebatch::model
