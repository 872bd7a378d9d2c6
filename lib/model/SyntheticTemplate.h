#pragma once
// A synthetic face template (a half-ellipsoid "face" over an elliptic UV
// mask) with the grid topology of render::BuildTopology, rough 68 landmarks
// and region boxes from render::RegionBoxes. Cheap at any size: used by tests
// and by `model init --template synthetic`. The default template is
// render::DefaultTemplate (MediaPipe). Units: centimetres like the default
// template (x in [-7.5, 7.5]), y up, z towards the camera.
#include "render/Template.h"

namespace facebatch::model {

render::FaceTemplate SyntheticTemplate(int uv_rows, int uv_cols);

}  // namespace facebatch::model
