#pragma once
// Face topology from the UV grid (DESIGN.md "Core representation"; paper
// section 3.1): every UV pixel inside the face mask is a mesh vertex and every
// 2x2 block of masked pixels gives two triangles.
//
// Conventions used across facebatch (all modules rely on them):
//  - A UV map is a float tensor [B, C, U, V] (U rows, V columns; paper 192 x 224).
//    Row r / column c of the map is pixel (r, c). Shape maps hold x, y, z in
//    model units; albedo maps hold linear RGB in [0, 1].
//  - The mask is a bool tensor [U, V]. Vertex k is the k-th masked pixel in
//    row-major order.
//  - Per-vertex UV coordinates: u = (c + 0.5) / V, v = 1 - (r + 0.5) / U
//    (OBJ/OpenGL convention: v grows upwards, so row 0 is the top, v near 1).
//  - The UV layout is left-right symmetric about the vertical centre line
//    (column c mirrors column V - 1 - c); eqs. 8 and 16 flip along it.
//  - Model space: x to the subject's left-to-right as seen by the camera
//    (image right), y up, z towards the camera. Units: see Template.h.
//  - Regions: "left eye" is the eye on the LEFT of a frontal image (smaller
//    UV columns; the subject's right eye; iBUG 36-41), "right eye" its mirror
//    (iBUG 42-47). Boxes are sized from the landmarks with a margin (eyes: 1.6x
//    the eye-corner distance wide, 0.75 of that high; nose: iBUG 27-35 box x1.5
//    wide, x1.15 high; mouth: iBUG 48-59 box x1.4 wide, x1.8 high), then rows and
//    cols are rounded UP to multiples of 8 when that still fits the map (the
//    local pathways up/down-sample by 2^3), the right-eye box is the exact
//    mirror of the left-eye box, and the nose/mouth boxes are centred on the
//    vertical centre line (when V - cols is even). See RegionBoxes().
//  - Triangles: for a full 2x2 block with top-left pixel (r, c), TL=(r,c),
//    TR=(r,c+1), BL=(r+1,c), BR=(r+1,c+1); blocks left of the centre line use
//    (TL, BL, TR), (TR, BL, BR); blocks right of it the mirrored diagonal
//    (TL, BL, BR), (TL, BR, TR), so the mesh itself is mirror symmetric.
//    Both are counter-clockwise seen from +z when the map is a frontal face.
#include <ATen/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace facebatch::render {

/// A rectangle of UV pixels (a local region of the global-local decoders, section 3.4).
struct UVBox {
  int row0 = 0, col0 = 0, rows = 0, cols = 0;
};

/// The four local regions of the paper's local pathways, in this order.
enum Region : int { kLeftEye = 0, kRightEye = 1, kNose = 2, kMouth = 3 };
constexpr int kNumRegions = 4;
const char* RegionName(int region);

struct FaceTopology {
  int uv_rows = 0;                 ///< U
  int uv_cols = 0;                 ///< V
  at::Tensor mask;                 ///< [U, V] bool
  at::Tensor vertex_of_pixel;      ///< [U, V] int64, -1 outside the mask
  at::Tensor pixel_of_vertex;      ///< [N] int64, flat index r * V + c
  at::Tensor vertex_uv;            ///< [N, 2] float32 (u, v), see conventions above
  at::Tensor triangles;            ///< [F, 3] int64 vertex ids, counter-clockwise seen from the camera (+z)
  at::Tensor landmarks68;          ///< [68] int64 vertex ids, iBUG 68-point order
  at::Tensor flip;                 ///< [N] int64: vertex id of the mirrored pixel's vertex (-1 if unmasked)
  std::array<UVBox, kNumRegions> regions{};  ///< left eye, right eye, nose, mouth

  int64_t num_vertices() const;
  int64_t num_triangles() const;
};

/// Builds the topology for a bool mask [U, V] (any size). `landmarks68_uv` is
/// [68, 2] float (row, col) UV-pixel positions; each landmark's vertex is the
/// masked pixel nearest to it. Only pixels that belong to at least one full
/// 2x2 masked block should be in the mask (otherwise they get no triangle and a
/// zero normal); `CleanMask` does that.
FaceTopology BuildTopology(const at::Tensor& mask, const at::Tensor& landmarks68_uv);

/// Removes mask pixels that belong to no full 2x2 masked block.
at::Tensor CleanMask(const at::Tensor& mask);

/// The four region boxes derived from the landmarks (see conventions above).
std::array<UVBox, kNumRegions> RegionBoxes(const at::Tensor& landmarks68_uv, int uv_rows, int uv_cols);

/// Area-weighted vertex normals (sum over adjacent faces of the unnormalised
/// face normal (v1 - v0) x (v2 - v0), then normalised), differentiable in
/// `vertices` [B, N, 3] (any float dtype/device). Returns [B, N, 3].
at::Tensor VertexNormals(const FaceTopology& topology, const at::Tensor& vertices);

/// Samples UV maps [B, C, U, V] at the vertices (the grid is exact: a gather) -> [B, N, C].
at::Tensor VerticesFromUVMap(const FaceTopology& topology, const at::Tensor& uv_map);
/// Scatters per-vertex values [B, N, C] into UV maps [B, C, U, V] (zero outside the mask).
at::Tensor UVMapFromVertices(const FaceTopology& topology, const at::Tensor& values);
/// Left-right flip of UV maps [..., U, V] about the vertical centre line (eqs. 8, 16).
at::Tensor FlipUVMap(const at::Tensor& uv_map);

/// Indices of the 5-point subset in the 68-point iBUG order: left eye centre
/// (mean of 36-41), right eye centre (42-47), nose tip (30), mouth corners (48, 54).
/// The eye centres are means, so this returns the defining index lists.
std::array<std::array<int, 6>, 2> EyeIndices68();
constexpr int kNoseTip68 = 30;
constexpr int kMouthLeft68 = 48;
constexpr int kMouthRight68 = 54;

}  // namespace facebatch::render
