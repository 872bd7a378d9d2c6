#include "exporter/Preview.h"

#include <assimp/Importer.hpp>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <vector>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/Error.h"
#include "render/Colour.h"
#include "render/Lighting.h"
#include "render/Render.h"

namespace facebatch::exporter {

cv::Mat RenderMeshFile(const std::string& path, int size, bool y_down) {
  Assimp::Importer importer;
  const aiScene* scene = importer.ReadFile(path, aiProcess_JoinIdenticalVertices | aiProcess_Triangulate);
  if (!scene || scene->mNumMeshes == 0) throw InputError(path, std::string("Assimp cannot read a mesh: ") + importer.GetErrorString());
  const aiMesh* m = scene->mMeshes[0];
  if (!m->HasTextureCoords(0)) throw InputError(path, "the mesh has no texture coordinates");
  aiString tex;
  if (scene->mMaterials[m->mMaterialIndex]->GetTexture(aiTextureType_DIFFUSE, 0, &tex) != AI_SUCCESS)
    throw InputError(path, "the mesh's material has no diffuse texture");
  cv::Mat tex_bgr;
  std::string tex_path;
  if (const aiTexture* embedded = scene->GetEmbeddedTexture(tex.C_Str())) {  // GLB: "*0"
    tex_path = path + " (embedded texture " + tex.C_Str() + ")";
    if (embedded->mHeight != 0) throw InputError(tex_path, "uncompressed embedded textures are not supported");
    const cv::Mat bytes(1, static_cast<int>(embedded->mWidth), CV_8U, embedded->pcData);
    tex_bgr = cv::imdecode(bytes, cv::IMREAD_COLOR);
  } else {
    tex_path = (std::filesystem::path(path).parent_path() / tex.C_Str()).string();
    tex_bgr = cv::imread(tex_path, cv::IMREAD_COLOR);
  }
  if (tex_bgr.empty()) throw InputError(tex_path, "cannot read the texture (referenced by " + path + ")");

  const int64_t N = m->mNumVertices;
  std::vector<float> xyz(static_cast<size_t>(3 * N));
  cv::Mat map_x(static_cast<int>(N), 1, CV_32F), map_y(static_cast<int>(N), 1, CV_32F);
  for (int64_t i = 0; i < N; ++i) {
    for (int k = 0; k < 3; ++k) xyz[static_cast<size_t>(3 * i + k)] = m->mVertices[i][k];
    map_x.at<float>(int(i)) = m->mTextureCoords[0][i].x * tex_bgr.cols - 0.5f;
    map_y.at<float>(int(i)) = (1 - m->mTextureCoords[0][i].y) * tex_bgr.rows - 0.5f;
  }
  auto verts = torch::from_blob(xyz.data(), {N, 3}, torch::kFloat).clone();
  cv::Mat tex_f, sampled;
  tex_bgr.convertTo(tex_f, CV_32FC3, 1 / 255.0);
  cv::remap(tex_f, sampled, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_REPLICATE);  // N x 1, BGR sRGB
  auto srgb = torch::from_blob(sampled.data, {N, 3}, torch::kFloat).flip(1).clone();
  auto albedo = render::SrgbToLinear(srgb);
  std::vector<int64_t> faces;
  faces.reserve(3 * size_t(m->mNumFaces));
  for (unsigned f = 0; f < m->mNumFaces; ++f) {
    if (m->mFaces[f].mNumIndices != 3) throw InputError(path, "the mesh has non-triangle faces");
    for (int k = 0; k < 3; ++k) faces.push_back(int64_t(m->mFaces[f].mIndices[k]));
  }
  auto tris = torch::from_blob(faces.data(), {int64_t(m->mNumFaces), 3}, torch::kLong).clone();
  // Front view fitted into the picture: M = [s 0 0 tx; 0 -+s 0 ty] (eq. 3, y flipped for model space).
  auto lo = std::get<0>(verts.min(0)), hi = std::get<0>(verts.max(0));
  const double ex = (hi[0] - lo[0]).item<double>(), ey = (hi[1] - lo[1]).item<double>();
  const double s = 0.9 * size / std::max({ex, ey, 1e-9});
  const double cx = ((hi[0] + lo[0]) / 2).item<double>(), cy = ((hi[1] + lo[1]) / 2).item<double>();
  const double sy = y_down ? s : -s;
  auto M = torch::tensor({{s, 0.0, 0.0, (size - 1) / 2.0 - s * cx}, {0.0, sy, 0.0, (size - 1) / 2.0 - sy * cy}},
                         torch::kFloat).unsqueeze(0);
  auto L = render::SimpleLighting(1, 0.6, 0.7, -0.4, 0.5, 0.8);
  auto r = render::RenderMesh(tris, verts.unsqueeze(0), albedo.unsqueeze(0), M, L, size, size);
  // Grey background: linear 0.214 is sRGB 0.5.
  auto pic = torch::where(r.mask[0] > 0, r.image[0], torch::full_like(r.image[0], 0.214));
  return render::LinearRgbToSrgbBgr8(pic);
}

}  // namespace facebatch::exporter
