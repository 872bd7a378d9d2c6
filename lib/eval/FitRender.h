#pragma once
// Re-rendering stored fits (schemas/shard.md) in their model-image crop, for
// `facebatch eval` (Table 1's l2,1 needs I(S, A) against the input crop) and
// `facebatch report` (contact sheets). Everything here is CPU, float32.
//
//   batch::ShardReader shard(path);
//   eval::ShardTopology topo(shard);                 // mesh of the file's /topology
//   auto fit = eval::ReadFit(shard, row);           // maps, M, L, crop_to_original
//   auto r = eval::RenderFit(topo, fit.shape, fit.albedo, fit.projection, fit.lighting, topo.image_size);
//   auto crop = eval::LoadCrop(fit.source, fit.crop_to_original, topo.image_size);
#include <ATen/Tensor.h>
#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "render/Topology.h"
#include "render/Render.h"

namespace facebatch::batch {
class ShardReader;
}

namespace facebatch::eval {

/// The fit output files of `inputs`: files as given (InputError when missing), directories
/// expanded to their *.h5 files, recursively and sorted, skipping `*.parts/` folders of
/// unfinished shards (InputError for a directory without any).
std::vector<std::string> FitOutputFiles(const std::vector<std::string>& inputs);

/// The mesh a shard file declares (/topology; render/Topology.h conventions).
struct ShardTopology {
  render::FaceTopology mesh;  ///< batch::TopologyOfShard (checked against the stored triangles and UVs)
  int uv_rows = 0, uv_cols = 0;
  int image_size = 224;       ///< S (root attribute image_size)
  explicit ShardTopology(const batch::ShardReader& shard);
  /// Per-vertex values of UV maps [B, C, U, V] -> [B, N, C] (render::VerticesFromUVMap).
  at::Tensor Vertices(const at::Tensor& uv_maps) const;
};

/// One stored fit (an ok row), as tensors.
struct StoredFit {
  std::string id, source;       ///< /images/id, /images/source
  at::Tensor shape, albedo;     ///< [3, U, V] float32 (/maps/shape, /maps/albedo)
  at::Tensor shape_proxy, albedo_proxy;  ///< [3, U, V], undefined when not stored
  at::Tensor projection;        ///< [2, 4] M in model-image pixels
  at::Tensor lighting;          ///< [27]
  cv::Matx23d crop_to_original; ///< model-image pixels -> original pixels
};

/// Reads row `row` of `shard`. Throws InputError naming the file when /maps/shape or
/// /maps/albedo were left out of the fit's --outputs (they are needed to re-render).
StoredFit ReadFit(const batch::ShardReader& shard, int64_t row);
/// Throws the InputError of ReadFit when the file lacks the maps (check once per file).
void RequireMaps(const batch::ShardReader& shard);

/// Renders I(S, A) (render::RenderMesh: albedo x SH shading) of one fit: shape and
/// albedo maps [3, U, V] (or [B, 3, U, V]), M [2, 4], L [27] -> image [B, 3, S, S] etc.
render::RenderResult RenderFit(const ShardTopology& topology, const at::Tensor& shape, const at::Tensor& albedo,
                               const at::Tensor& projection, const at::Tensor& lighting, int size);

/// Shape shading for QA: the mesh rendered with a constant grey albedo (0.75) under
/// a fixed frontal light (SH: ambient 0.75 + 0.45 along +z), same M.
render::RenderResult RenderShading(const ShardTopology& topology, const at::Tensor& shape, const at::Tensor& projection,
                                   int size);

/// The model's input crop again: the original image at `source` (io::LoadImageBgr)
/// warped by the inverse of crop_to_original (bilinear, black outside; the same
/// warp io::CropFace made) -> [3, S, S] float32 linear RGB in [0, 1] (io::BgrToLinearRgb). Throws io::ItemError.
at::Tensor LoadCrop(const std::string& source, const cv::Matx23d& crop_to_original, int size);

/// Bilinear resampling of UV maps [B, C, U, V] to [B, C, rows, cols] in the UV
/// parameterisation (pixel centres at (c + 0.5) / V: align_corners = false);
/// the identity when the size is the same.
at::Tensor ResampleUV(const at::Tensor& uv_maps, int rows, int cols);

}  // namespace facebatch::eval
