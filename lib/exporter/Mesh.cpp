#include "exporter/Mesh.h"

#include <assimp/Exporter.hpp>
#include <assimp/material.h>
#include <assimp/scene.h>
#include <assimp/texture.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "batch/ShardReader.h"
#include "core/Error.h"
#include "render/Png.h"
#include "render/Projection.h"

namespace facebatch::exporter {

at::Tensor ImageSpaceVertices(const at::Tensor& vertices, const at::Tensor& M, const at::Tensor& crop_to_original) {
  auto X = vertices.to(torch::kDouble).view({1, -1, 3});
  auto Md = M.to(torch::kDouble).view({1, 2, 4});
  auto A = crop_to_original.to(torch::kDouble).view({2, 3});
  auto xy_crop = render::ProjectVertices(Md, X)[0];                                // [N, 2] crop pixels
  auto xy = xy_crop.matmul(A.slice(1, 0, 2).t()) + A.select(1, 2).reshape({1, 2});    // original pixels
  const double a = std::sqrt(std::abs(torch::det(A.slice(1, 0, 2)).item<double>()));
  auto z = render::VertexDepth(Md, X)[0] * a;                                      // [N], away from the camera
  return torch::cat({xy, z.unsqueeze(1)}, 1).to(torch::kFloat);
}

MeshData MakeMesh(const render::FaceTopology& topology, const at::Tensor& positions) {
  MeshData m;
  m.positions = positions.to(torch::kFloat).contiguous();
  m.normals = render::VertexNormals(topology, m.positions.unsqueeze(0))[0].contiguous();
  m.uvs = topology.vertex_uv.to(torch::kFloat).contiguous();
  m.triangles = topology.triangles.contiguous();
  return m;
}

const char* AssimpFormatId(const std::string& kind) {
  if (kind == "obj") return "obj";
  if (kind == "ply") return "plyb";
  if (kind == "glb") return "glb2";
  throw Error("exporter: no mesh format '" + kind + "' (obj, ply, glb)");
}

void WriteMesh(const std::string& path, const std::string& format, const MeshData& mesh, const std::string& texture) {
  const char* id = AssimpFormatId(format);
  const int64_t N = mesh.positions.size(0), F = mesh.triangles.size(0);
  auto scene = std::make_unique<aiScene>();
  scene->mRootNode = new aiNode("face");
  scene->mRootNode->mNumMeshes = 1;
  scene->mRootNode->mMeshes = new unsigned int[1]{0};
  scene->mNumMaterials = 1;
  scene->mMaterials = new aiMaterial*[1];
  auto* mat = new aiMaterial;
  scene->mMaterials[0] = mat;
  aiString name("face");
  mat->AddProperty(&name, AI_MATKEY_NAME);
  aiString tex(texture);
  if (format == "glb") {
    // GLB is meant to be one self-contained file: the PNG goes into its binary chunk as an
    // embedded texture ("*0"; glTF images[0] with a bufferView and mimeType image/png).
    const auto file = std::filesystem::path(path).parent_path() / texture;
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw InputError(file.string(), "cannot read the texture to embed in " + path);
    if (bytes.empty()) throw InputError(file.string(), "the texture to embed in " + path + " is empty or missing");
    auto* t = new aiTexture;
    t->mWidth = static_cast<unsigned int>(bytes.size());  // mHeight 0: compressed data of mWidth bytes
    t->mHeight = 0;
    std::snprintf(t->achFormatHint, sizeof(t->achFormatHint), "png");
    t->pcData = new aiTexel[(bytes.size() + sizeof(aiTexel) - 1) / sizeof(aiTexel)];  // freed by ~aiTexture
    std::memcpy(t->pcData, bytes.data(), bytes.size());
    t->mFilename = aiString(texture);
    scene->mNumTextures = 1;
    scene->mTextures = new aiTexture*[1]{t};
    tex = aiString("*0");
  }
  mat->AddProperty(&tex, AI_MATKEY_TEXTURE_DIFFUSE(0));
  mat->AddProperty(&tex, AI_MATKEY_TEXTURE(aiTextureType_BASE_COLOR, 0));
  aiColor3D white(1, 1, 1);
  mat->AddProperty(&white, 1, AI_MATKEY_COLOR_DIFFUSE);
  scene->mNumMeshes = 1;
  scene->mMeshes = new aiMesh*[1];
  auto* m = new aiMesh;
  scene->mMeshes[0] = m;
  m->mName = aiString("face");
  m->mPrimitiveTypes = aiPrimitiveType_TRIANGLE;
  m->mMaterialIndex = 0;
  m->mNumVertices = static_cast<unsigned int>(N);
  m->mVertices = new aiVector3D[N];
  m->mNormals = new aiVector3D[N];
  m->mTextureCoords[0] = new aiVector3D[N];
  m->mNumUVComponents[0] = 2;
  const float* p = mesh.positions.data_ptr<float>();
  const float* n = mesh.normals.data_ptr<float>();
  const float* t = mesh.uvs.data_ptr<float>();
  for (int64_t i = 0; i < N; ++i) {
    m->mVertices[i] = aiVector3D(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    m->mNormals[i] = aiVector3D(n[3 * i], n[3 * i + 1], n[3 * i + 2]);
    m->mTextureCoords[0][i] = aiVector3D(t[2 * i], t[2 * i + 1], 0);
  }
  m->mNumFaces = static_cast<unsigned int>(F);
  m->mFaces = new aiFace[F];
  const int64_t* f = mesh.triangles.data_ptr<int64_t>();
  for (int64_t i = 0; i < F; ++i) {
    m->mFaces[i].mNumIndices = 3;
    m->mFaces[i].mIndices = new unsigned int[3]{static_cast<unsigned int>(f[3 * i]),
                                                static_cast<unsigned int>(f[3 * i + 1]),
                                                static_cast<unsigned int>(f[3 * i + 2])};
  }
  Assimp::Exporter exporter;
  if (exporter.Export(scene.get(), id, path) != AI_SUCCESS)
    throw InputError(path, fmt::format("Assimp could not write the {} file: {}", format, exporter.GetErrorString()));
}

void WriteTexture(const std::string& path, const at::Tensor& albedo_map, const at::Tensor& mask) {
  // Fill texels outside the mask from their masked neighbours (a few rings are
  // enough for bilinear filtering and mip-mapping at the border).
  auto img = albedo_map.to(torch::kFloat).clone();       // [3, U, V]
  auto known = mask.to(torch::kFloat).unsqueeze(0).unsqueeze(0);  // [1, 1, U, V]
  img = img * known[0];
  auto kernel = torch::ones({1, 1, 3, 3});
  for (int ring = 0; ring < 8; ++ring) {
    auto sum = torch::conv2d(img.unsqueeze(1), kernel, {}, 1, 1).squeeze(1);  // [3, U, V]
    auto cnt = torch::conv2d(known, kernel, {}, 1, 1)[0];                      // [1, U, V]
    auto fill = (known[0] == 0) & (cnt > 0);
    img = torch::where(fill, sum / cnt.clamp_min(1), img);
    known = (known + fill.to(torch::kFloat).unsqueeze(0)).clamp_max(1);
  }
  render::WritePng(path, img.clamp(0, 1), /*srgb=*/true);
}

}  // namespace facebatch::exporter
