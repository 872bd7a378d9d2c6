#pragma once
// Per-image meshes of a shard file and their export through Assimp (obj, ply, glb).
//
// Frames (docs/export.md "Frames"):
//  - model space (--space model): /vertices/model as fitted, template units
//    (centimetres), x right, y up, z towards the camera (render/Topology.h).
//  - image space (--space image): aligned to the ORIGINAL image: x right and
//    y down in original-image pixels (origin at the centre of the top-left
//    pixel, so (x, y) equal /vertices/image), z = depth AWAY from the camera
//    in the same pixel units: z = a * s (m0 x m1) . X (render::VertexDepth,
//    eq. 3's weak perspective) where a = sqrt(|det A|) is the scale of the
//    crop-to-original similarity A; z = 0 at the model origin (the head
//    centre), so the face has z < 0. (x, y, z) is a proper (right-handed)
//    similarity image of model space, so the triangle winding and the outward
//    normals are preserved (viewers with y up show it upside down).
// Normals: area-weighted vertex normals (render::VertexNormals) of the
// exported positions; the triangles are counter-clockwise seen from the
// camera, so normals point out of the face (away from the head centre).
// UVs: render/Topology.h's (u, v) with v UP (OBJ/OpenGL; Assimp's convention):
// vertex of UV pixel (r, c) has u = (c + 0.5) / V, v = 1 - (r + 0.5) / U, the
// centre of texel (r, c) of the texture PNG (row 0 = top). Assimp's glTF
// exporter writes glTF's v-down convention (1 - v) itself.
// Texture: the albedo map [3, U, V] (linear RGB in [0, 1]) as an 8-bit sRGB PNG
// (glTF baseColorTexture and OBJ/PLY viewers treat 8-bit colour textures as
// sRGB), V x U pixels, texels outside the face mask filled from the nearest
// mask texels (no dark seams under bilinear filtering).
#include <ATen/Tensor.h>

#include <string>

#include "batch/ShardReader.h"
#include "render/Topology.h"

namespace facebatch::batch {
class ShardReader;
}

namespace facebatch::exporter {

using batch::TopologyOfShard;  // batch/ShardReader.h

/// Model-space vertices [N, 3] -> image-space vertices [N, 3] (see above); M [2, 4]
/// (/latents/projection), crop_to_original [2, 3] float64 (/images/crop_to_original).
at::Tensor ImageSpaceVertices(const at::Tensor& vertices, const at::Tensor& M, const at::Tensor& crop_to_original);

struct MeshData {
  at::Tensor positions;  ///< [N, 3] float32
  at::Tensor normals;    ///< [N, 3] float32, unit length
  at::Tensor uvs;        ///< [N, 2] float32 (u, v), v up
  at::Tensor triangles;  ///< [F, 3] int64
};

/// Positions + normals (render::VertexNormals) + the topology's UVs and triangles.
MeshData MakeMesh(const render::FaceTopology& topology, const at::Tensor& positions);

/// Writes `mesh` as `format` (obj: OBJ + MTL beside it; ply: binary PLY with a
/// `comment TextureFile`; glb: binary glTF 2.0) through Assimp's exporter, with
/// one material named "face" whose diffuse (and glTF base colour) texture is
/// `texture` (a path relative to the mesh file; for glb the file, which must exist, is
/// embedded in the binary chunk as images[0] with mimeType image/png, Assimp's "*0").
/// InputError naming `path` on failure.
void WriteMesh(const std::string& path, const std::string& format, const MeshData& mesh, const std::string& texture);

/// Writes an albedo map [3, U, V] (linear RGB) as the 8-bit sRGB texture PNG
/// (see above); `mask` is [U, V] bool.
void WriteTexture(const std::string& path, const at::Tensor& albedo_map, const at::Tensor& mask);

/// The Assimp exporter id and the file extension of a mesh kind (obj, ply, glb).
const char* AssimpFormatId(const std::string& kind);

}  // namespace facebatch::exporter
