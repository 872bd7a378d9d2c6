#pragma once
// The face template: mean shape and mean albedo UV maps that the decoders add
// to (DESIGN.md "Template"). The default comes from MediaPipe's canonical face
// model (Apache-2.0), rasterised into a U x V UV grid at any resolution.
//
// Units: centimetres, as MediaPipe's canonical face (face about 15.5 cm wide,
// origin near the head centre; nose tip at z = 7.6). Axes as in Topology.h.
// The committed mesh samples/template/canonical_face.obj (made by
// scripts/import-template.sh) has exactly symmetric UVs (the raw MediaPipe
// layout was off by at most 0.0005 in u and 0.0012 in v), v pointing up and
// UVs spanning [0.01, 0.99]. MediaPipe's mesh is a disc (no eye or mouth
// holes: eyes closed, lips closed), so the mask is the whole face oval.
// DefaultTemplate enforces exact left-right symmetry of the mask and the mean
// shape at any U x V (after measuring the residual asymmetry, which comes only
// from rasterisation ties and float rounding), and smooths the piecewise-linear
// shape map with a masked Gaussian (sigma = 1% of V) to hide the facets of the
// 898-triangle source. At 192 x 224: 32,148 vertices, 63,482 triangles.
// The mean albedo is a designed skin-tone map (docs/render.md).
#include <ATen/Tensor.h>

#include <array>
#include <string>
#include <vector>

#include "render/Topology.h"

namespace facebatch::render {

struct FaceTemplate {
  FaceTopology topology;
  at::Tensor mean_shape;   ///< [3, U, V] float32, model units; zero outside the mask
  at::Tensor mean_albedo;  ///< [3, U, V] float32, linear RGB in [0, 1]; zero outside the mask
  at::Tensor landmarks68_uv;  ///< [68, 2] float32 (row, col) UV-pixel positions of the 68 landmarks
  std::string source;      ///< provenance, e.g. "mediapipe canonical_face_model (Apache-2.0)"
  /// Before symmetrisation: fraction of mask pixels whose mirror pixel is not
  /// masked, and the largest |S(r, c) - mirror(S(r, V-1-c))| over pixels masked on both sides (cm).
  double raw_mask_asymmetry = 0;
  double raw_shape_asymmetry = 0;
};

/// A triangle mesh with per-vertex UVs (OBJ convention: v up) and landmarks.
struct TemplateMesh {
  std::vector<std::array<float, 3>> positions;
  std::vector<std::array<float, 2>> uvs;
  std::vector<std::array<int, 3>> triangles;  ///< 0-based
  std::array<int, 68> landmarks68{};          ///< vertex ids, iBUG order
  std::vector<int> mirror;                    ///< mirror vertex of each vertex (may be empty)
};

/// Parses the facebatch-template OBJ format (docs/render.md "Template"):
/// `v`, `vt`, `f a/a b/b c/c` lines plus `# facebatch-template 1`,
/// `# landmarks68 ...` and `# mirror ...` comment lines. `name` is used in errors.
TemplateMesh ParseTemplateMesh(const std::string& text, const std::string& name);
/// Reads a template OBJ file (throws InputError naming the file).
TemplateMesh LoadTemplateMesh(const std::string& path);
/// The committed MediaPipe canonical face (compiled into the library).
const TemplateMesh& CanonicalFaceMesh();
/// The text of samples/template/canonical_face.obj as compiled in.
const char* CanonicalFaceObjText();

/// Rasterises a template mesh into a U x V template (mask, mean shape, mean albedo, topology).
FaceTemplate TemplateFromMesh(const TemplateMesh& mesh, int uv_rows, int uv_cols, const std::string& source);

/// The default template at U x V (paper: 192 x 224), built from the committed
/// converted MediaPipe canonical mesh (see docs/render.md "Default template").
FaceTemplate DefaultTemplate(int uv_rows, int uv_cols);

}  // namespace facebatch::render
