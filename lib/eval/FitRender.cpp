// Re-rendering stored fits; see FitRender.h.
#include "eval/FitRender.h"

#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>

#include "batch/ShardReader.h"
#include "core/Error.h"
#include "io/Crop.h"
#include "io/Image.h"
#include "render/Lighting.h"

namespace facebatch::eval {
namespace fs = std::filesystem;
namespace {

at::Tensor FromFloats(std::vector<float> v, std::vector<int64_t> dims) {
  return torch::from_blob(v.data(), dims, torch::kFloat32).clone();
}

}  // namespace

std::vector<std::string> FitOutputFiles(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(in); it != fs::recursive_directory_iterator(); ++it) {
        if (it->is_directory() && it->path().extension() == ".parts") {
          it.disable_recursion_pending();  // part files of unfinished shards
          continue;
        }
        if (it->is_regular_file() && it->path().extension() == ".h5") found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) throw InputError(in, "directory has no .h5 fit output");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      if (!fs::exists(in)) throw InputError(in, "no such file");
      files.push_back(in);
    }
  }
  return files;
}

ShardTopology::ShardTopology(const batch::ShardReader& shard) : mesh(batch::TopologyOfShard(shard)) {
  uv_rows = static_cast<int>(shard.layout().sizes.uv_rows);
  uv_cols = static_cast<int>(shard.layout().sizes.uv_cols);
  const auto& attrs = shard.header().int_attrs;
  auto it = attrs.find("image_size");
  if (it != attrs.end()) image_size = static_cast<int>(it->second);
}

at::Tensor ShardTopology::Vertices(const at::Tensor& uv_maps) const { return render::VerticesFromUVMap(mesh, uv_maps); }

void RequireMaps(const batch::ShardReader& shard) {
  for (const char* f : {"/maps/shape", "/maps/albedo"})
    if (!shard.Has(f))
      throw InputError(shard.path(), std::string("has no ") + f +
                                         ": the fit was run with --outputs without it; eval and report re-render "
                                         "I(S, A) from /maps/shape and /maps/albedo (fit with --outputs all, or "
                                         "at least shape,albedo)");
}

StoredFit ReadFit(const batch::ShardReader& shard, int64_t row) {
  RequireMaps(shard);
  const auto& s = shard.layout().sizes;
  StoredFit f;
  f.id = shard.ids().at(static_cast<size_t>(row));
  f.source = shard.String("/images/source", row);
  f.shape = FromFloats(shard.Floats("/maps/shape", row), {3, s.uv_rows, s.uv_cols});
  f.albedo = FromFloats(shard.Floats("/maps/albedo", row), {3, s.uv_rows, s.uv_cols});
  if (shard.Has("/maps/shape_proxy"))
    f.shape_proxy = FromFloats(shard.Floats("/maps/shape_proxy", row), {3, s.uv_rows, s.uv_cols});
  if (shard.Has("/maps/albedo_proxy"))
    f.albedo_proxy = FromFloats(shard.Floats("/maps/albedo_proxy", row), {3, s.uv_rows, s.uv_cols});
  f.projection = FromFloats(shard.Floats("/latents/projection", row), {2, 4});
  f.lighting = FromFloats(shard.Floats("/latents/lighting", row), {27});
  const auto t = shard.Doubles("/images/crop_to_original", row);
  if (t.size() != 6) throw InputError(shard.path(), "/images/crop_to_original is not 2 x 3");
  f.crop_to_original = cv::Matx23d(t[0], t[1], t[2], t[3], t[4], t[5]);
  return f;
}

render::RenderResult RenderFit(const ShardTopology& topology, const at::Tensor& shape, const at::Tensor& albedo,
                               const at::Tensor& projection, const at::Tensor& lighting, int size) {
  torch::NoGradGuard no_grad;
  auto batched = [](const at::Tensor& t, int64_t dims) { return t.dim() == dims ? t.unsqueeze(0) : t; };
  const auto S = batched(shape, 3).to(torch::kFloat32), A = batched(albedo, 3).to(torch::kFloat32);
  return render::RenderMesh(topology.mesh.triangles, topology.Vertices(S), topology.Vertices(A),
                            batched(projection, 2).to(torch::kFloat32), batched(lighting, 1).to(torch::kFloat32),
                            size, size);
}

render::RenderResult RenderShading(const ShardTopology& topology, const at::Tensor& shape, const at::Tensor& projection,
                                   int size) {
  const auto S = shape.dim() == 3 ? shape.unsqueeze(0) : shape;
  const auto B = S.size(0);
  auto L = torch::zeros({B, 27}, torch::kFloat32);
  for (int c = 0; c < 3; ++c) {
    L.select(1, c * 9 + 0).fill_(0.75 / render::kSHConstant0);  // ambient
    L.select(1, c * 9 + 2).fill_(0.45 / 0.488603);             // Y2 = 0.488603 z: light along +z (the camera)
  }
  return RenderFit(topology, S, torch::full_like(S, 0.75), projection, L, size);
}

at::Tensor LoadCrop(const std::string& source, const cv::Matx23d& crop_to_original, int size) {
  const cv::Mat bgr = io::LoadImageBgr(source);
  cv::Mat crop;
  cv::warpAffine(bgr, crop, cv::Mat(io::InvertAffine(crop_to_original)), cv::Size(size, size), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar(0, 0, 0));
  cv::Mat rgb = io::BgrToLinearRgb(crop);
  return torch::from_blob(rgb.data, {size, size, 3}, torch::kFloat32).permute({2, 0, 1}).contiguous().clone();
}

at::Tensor ResampleUV(const at::Tensor& uv_maps, int rows, int cols) {
  if (uv_maps.size(2) == rows && uv_maps.size(3) == cols) return uv_maps;
  namespace F = torch::nn::functional;
  return F::interpolate(uv_maps, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{rows, cols})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
}

}  // namespace facebatch::eval
