#pragma once
// `facebatch export preview MESH...`: renders an exported mesh file back, as a
// check that what was written looks right (and for docs/images/export-example.png).
// The file is imported with Assimp (any format it reads: obj, ply, glb, ...),
// its material's diffuse texture (8-bit sRGB PNG, Mesh.h) is converted to linear
// RGB and sampled bilinearly at each vertex's UV (Assimp's v-up convention: texel
// row = (1 - v) H - 0.5), and the mesh is drawn with render::RenderMesh in a
// front view (weak perspective, eq. 3) fitted into size x size pixels, lit by an
// ambient + directional SH light (render::SimpleLighting) from the upper left,
// over a grey background, converted to sRGB.
#include <ATen/Tensor.h>

#include <opencv2/core.hpp>
#include <string>

namespace facebatch::exporter {

/// The 8-bit BGR preview of a mesh file. `y_down`: the mesh is in the image
/// frame of `--space image` (x right, y down, z away from the camera) rather than
/// model space (y up, z towards the camera). InputError naming the file on failure.
cv::Mat RenderMeshFile(const std::string& path, int size = 512, bool y_down = false);

}  // namespace facebatch::exporter
