// facebatch export (issue 8): meshes re-imported with Assimp, texture
// orientation on a synthetic texture, normals orientation, image-space frame,
// maps round trip, overlays, selection, and bad inputs. The shards are made by
// the real fit job (tiny untrained model) on samples/AFLW2000.
#include <assimp/Importer.hpp>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "batch/ShardFile.h"
#include "batch/ShardReader.h"
#include "core/Error.h"
#include "exporter/Export.h"
#include "exporter/Maps.h"
#include "exporter/Mesh.h"
#include "io/Hdf5Rows.h"
#include "model/FaceModel.h"
#include "model/SyntheticTemplate.h"
#include "render/Projection.h"
#include "render/Render.h"
#include "render/Template.h"

namespace facebatch::exporter {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::ReadFile;
using facebatch::testing::RunCli;
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;

nlohmann::json ReadJson(const fs::path& p) { return nlohmann::json::parse(ReadFile(p)); }

at::Tensor Floats(const batch::ShardReader& r, const std::string& field, int64_t row, std::vector<int64_t> dims) {
  auto v = r.Floats(field, row);
  return torch::from_blob(v.data(), dims, torch::kFloat).clone();
}

// Fit fixture: a tiny untrained model fitted (2 Adam steps) to the AFLW2000 samples,
// one of whose images is deleted after indexing (a failed item).
class Export : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("facebatch-export");
    const fs::path d = dir_->path();
    fs::copy(fs::path(FACEBATCH_SAMPLES) / "AFLW2000", d / "aflw", fs::copy_options::recursive);
    const auto c = model::testutil::SmallFitConfig();
    auto t = model::SyntheticTemplate(c.uv_rows, c.uv_cols);
    model::FaceModel::Create(c, t, 3).Save((d / "model.h5").string());
    auto ix = RunCli({"index", "--root", (d / "aflw").string(), "--out", (d / "m.jsonl").string(), "--progress", "none"});
    ASSERT_EQ(ix.exit_code, 0) << ix.output;
    fs::remove(d / "aflw" / "image00006.jpg");  // the fit records it as failed (missing_image)
    for (const auto& [name, outputs] : std::vector<std::pair<std::string, std::string>>{{"fit", "all"}, {"noverts", "albedo"}}) {
      auto r = RunCli({"fit", "--manifest", (d / "m.jsonl").string(), "--model", (d / "model.h5").string(), "--out",
                       (d / name).string(), "--shard", "0/1", "--steps", "2", "--batch", "4", "--threads", "1",
                       "--progress", "none", "--outputs", outputs});
      ASSERT_EQ(r.exit_code, kExitSomeFailed) << r.output;
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path Shard() { return dir_->path() / "fit" / "shard-00000-of-00001.h5"; }
  static fs::path Out(const std::string& name) { return dir_->path() / ("out-" + name); }
  static ExportOptions Options(const std::string& kind, const std::string& out) {
    ExportOptions o;
    o.kind = kind;
    o.inputs = {Shard().string()};
    o.out = Out(out).string();
    o.threads = 2;
    o.progress = "none";
    return o;
  }
  static TempDir* dir_;
};
TempDir* Export::dir_ = nullptr;

// Every export of these tests: the library call, then every GLB it wrote through the Khronos
// glTF-Validator (issue 17: 0 errors, 0 warnings).
ExportSummary ExportAndValidate(const ExportOptions& o) {
  auto s = RunExport(o);
  if (o.kind == "glb" && fs::is_directory(o.out)) testing::ExpectValidGlbs(o.out);
  return s;
}

const aiScene* Import(Assimp::Importer& im, const fs::path& file) {
  // OBJ stores positions, normals and UVs with separate indices: join identical corners.
  const aiScene* s = im.ReadFile(file.string(), aiProcess_JoinIdenticalVertices);
  EXPECT_NE(s, nullptr) << file << ": " << im.GetErrorString();
  return s;
}

TEST_F(Export, MeshesReimportWithTopologyCountsUVsNormalsAndTexture) {
  batch::ShardReader shard(Shard().string());
  const auto& sz = shard.layout().sizes;
  auto topo = TopologyOfShard(shard);
  for (const std::string kind : {"obj", "ply", "glb"}) {
    SCOPED_TRACE(kind);
    auto o = Options(kind, kind);
    auto s = ExportAndValidate(o);
    ASSERT_EQ(s.exported, 3) << s.ToString();
    EXPECT_EQ(s.failed, 0);
    auto j = ReadJson(Out(kind) / "export.json");
    EXPECT_EQ(j["format"], "facebatch-export");
    EXPECT_EQ(j["schema_version"], 1);
    ASSERT_EQ(j["items"].size(), 3u);
    for (const auto& item : j["items"]) {
      ASSERT_EQ(item["status"], "exported");
      const std::string mesh = item["files"][0];
      for (const auto& f : item["files"]) EXPECT_TRUE(fs::exists(Out(kind) / f.get<std::string>())) << f;
      Assimp::Importer im;
      const aiScene* sc = Import(im, Out(kind) / mesh);
      ASSERT_NE(sc, nullptr);
      ASSERT_GE(sc->mNumMeshes, 1u);
      const aiMesh* m = sc->mMeshes[0];
      EXPECT_EQ(int64_t(m->mNumVertices), sz.num_vertices);
      EXPECT_EQ(int64_t(m->mNumFaces), sz.num_triangles);
      ASSERT_TRUE(m->HasTextureCoords(0));
      ASSERT_TRUE(m->HasNormals());
      // Every vertex: UV in [0, 1] on its own UV-grid texel, unit normal, and the
      // position of that vertex in /vertices/model.
      const int64_t row = shard.Find(item["id"].get<std::string>());
      auto verts = Floats(shard, "/vertices/model", row, {sz.num_vertices, 3});
      auto vop = topo.vertex_of_pixel;
      for (unsigned i = 0; i < m->mNumVertices; ++i) {
        const auto uv = m->mTextureCoords[0][i];
        ASSERT_TRUE(uv.x >= 0 && uv.x <= 1 && uv.y >= 0 && uv.y <= 1) << uv.x << " " << uv.y;
        const int c = int(std::floor(uv.x * sz.uv_cols)), r = int(std::floor((1 - uv.y) * sz.uv_rows));
        const int64_t v = vop[r][c].item<int64_t>();
        ASSERT_GE(v, 0);
        const auto n = m->mNormals[i];
        ASSERT_NEAR(std::sqrt(n.x * n.x + n.y * n.y + n.z * n.z), 1.0, 1e-4);
        for (int k = 0; k < 3; ++k) ASSERT_NEAR(m->mVertices[i][k], verts[v][k].item<float>(), 1e-4);
      }
      aiString tex;
      ASSERT_EQ(sc->mMaterials[m->mMaterialIndex]->GetTexture(aiTextureType_DIFFUSE, 0, &tex), AI_SUCCESS);
      cv::Mat img;
      if (kind == "glb") {  // embedded in the GLB (Assimp's "*0"), a PNG
        const aiTexture* t = sc->GetEmbeddedTexture(tex.C_Str());
        ASSERT_NE(t, nullptr) << tex.C_Str();
        EXPECT_EQ(t->mHeight, 0u);
        EXPECT_STREQ(t->achFormatHint, "png");
        img = cv::imdecode(cv::Mat(1, int(t->mWidth), CV_8U, t->pcData), cv::IMREAD_UNCHANGED);
      } else {
        const fs::path tex_path = Out(kind) / tex.C_Str();
        ASSERT_TRUE(fs::exists(tex_path)) << tex_path;
        img = cv::imread(tex_path.string(), cv::IMREAD_UNCHANGED);
      }
      EXPECT_EQ(img.cols, sz.uv_cols);
      EXPECT_EQ(img.rows, sz.uv_rows);
    }
  }
}

// A shard with the default template's mean shape and a synthetic texture:
// red around the lip landmarks (48-59), blue around the eye landmarks (36-47),
// green elsewhere. The exported texture must put each landmark vertex on its colour.
void WriteSyntheticShard(const std::string& path, const render::FaceTemplate& t) {
  const auto& topo = t.topology;
  const int U = topo.uv_rows, V = topo.uv_cols;
  const int64_t N = topo.num_vertices(), F = topo.num_triangles();
  batch::LayoutSizes s;
  s.latent_shape = 2, s.latent_albedo = 2, s.uv_rows = U, s.uv_cols = V, s.num_vertices = N, s.num_triangles = F;
  s.terms = {"photometric", "total"};
  auto layout = batch::ShardLayout::Make(s, batch::ParseOutputs("all"), false);
  batch::ShardHeader h;
  auto tri = topo.triangles.contiguous();
  h.triangles.assign(tri.data_ptr<int64_t>(), tri.data_ptr<int64_t>() + tri.numel());
  auto uv = topo.vertex_uv.contiguous();
  h.vertex_uv.assign(uv.data_ptr<float>(), uv.data_ptr<float>() + uv.numel());
  auto lm = topo.landmarks68.contiguous();
  h.landmarks68.assign(lm.data_ptr<int64_t>(), lm.data_ptr<int64_t>() + 68);
  auto mask = topo.mask.to(torch::kLong).contiguous();
  h.mask.assign(mask.data_ptr<int64_t>(), mask.data_ptr<int64_t>() + mask.numel());
  h.int_attrs["image_size"] = 224;
  auto albedo = torch::zeros({3, U, V});
  albedo[1].fill_(1);
  auto rows = torch::arange(U).view({U, 1}).to(torch::kFloat), cols = torch::arange(V).view({1, V}).to(torch::kFloat);
  for (int i = 36; i < 60; ++i) {
    auto p = t.landmarks68_uv[i];
    auto near = ((rows - p[0]).pow(2) + (cols - p[1]).pow(2)) <= 2.0;
    const int ch = i >= 48 ? 0 : 2;
    for (int c = 0; c < 3; ++c) albedo[c].masked_fill_(near, c == ch ? 1.0 : 0.0);
  }
  albedo *= topo.mask.to(torch::kFloat);
  batch::ImageRecord r;
  r.id = "synthetic/face";
  for (const auto& f : layout.fields) {
    const auto n = static_cast<size_t>(f.size());
    if (f.dtype == io::hdf5::DType::kString) r.strings[f.path] = "";
    else if (f.dtype == io::hdf5::DType::kFloat64) r.doubles[f.path] = std::vector<double>(n, 0.0);
    else if (f.dtype == io::hdf5::DType::kInt64 || f.dtype == io::hdf5::DType::kUInt8) r.ints[f.path] = std::vector<int64_t>(n, 0);
    else r.floats[f.path] = std::vector<float>(n, 0.5f);
  }
  r.strings["/images/id"] = r.id;
  r.strings["/images/status"] = "ok";
  auto a = albedo.contiguous();
  r.floats["/maps/albedo"].assign(a.data_ptr<float>(), a.data_ptr<float>() + a.numel());
  auto verts = render::VerticesFromUVMap(topo, t.mean_shape.unsqueeze(0))[0].contiguous();
  r.floats["/vertices/model"].assign(verts.data_ptr<float>(), verts.data_ptr<float>() + verts.numel());
  batch::WriteShardFile(path, h, layout, {r});
}

// Colour channel (0 R, 1 G, 2 B) of the texel nearest to (x, y) in a BGR 8-bit image.
int Dominant(const cv::Mat& bgr, double x, double y) {
  const int c = std::clamp(int(std::lround(x)), 0, bgr.cols - 1), r = std::clamp(int(std::lround(y)), 0, bgr.rows - 1);
  const auto px = bgr.at<cv::Vec3b>(r, c);
  const int red = px[2], green = px[1], blue = px[0];
  return red > green && red > blue ? 0 : (green > blue ? 1 : 2);
}

TEST(ExportTexture, LipAndEyeVerticesLandOnTheirTexelsInObjAndRawGltf) {
  TempDir dir;
  auto t = render::DefaultTemplate(48, 56);
  const auto shard = (dir / "synthetic.h5").string();
  WriteSyntheticShard(shard, t);
  auto lm_pos = render::VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0))[0].index_select(0, t.topology.landmarks68);
  for (const std::string kind : {"obj", "glb"}) {
    ExportOptions o;
    o.kind = kind;
    o.inputs = {shard};
    o.out = (dir / kind).string();
    o.progress = "none";
    ASSERT_EQ(ExportAndValidate(o).exported, 1);
    cv::Mat tex = cv::imread((dir / kind / "synthetic_face.albedo.png").string());
    ASSERT_EQ(tex.rows, 48);
    ASSERT_EQ(tex.cols, 56);
    Assimp::Importer im;
    const aiScene* sc = Import(im, dir / kind / ("synthetic_face." + kind));
    ASSERT_NE(sc, nullptr);
    const aiMesh* m = sc->mMeshes[0];
    for (int i = 36; i < 60; ++i) {
      // The imported vertex at the landmark's position (vertices may be reordered on import).
      unsigned best = 0;
      double best_d = 1e30;
      for (unsigned k = 0; k < m->mNumVertices; ++k) {
        double d2 = 0;
        for (int c = 0; c < 3; ++c) d2 += std::pow(m->mVertices[k][c] - lm_pos[i][c].item<float>(), 2);
        if (d2 < best_d) best_d = d2, best = k;
      }
      ASSERT_LT(best_d, 1e-8);
      const auto uv = m->mTextureCoords[0][best];  // Assimp: v up, row 0 of the image at v = 1
      EXPECT_EQ(Dominant(tex, uv.x * tex.cols - 0.5, (1 - uv.y) * tex.rows - 0.5), i >= 48 ? 0 : 2)
          << kind << " landmark " << i;
    }
  }
  // The OBJ and the GLB (embedded texture) rendered back (export preview): the mouth (red)
  // is below the eyes (blue).
  for (const std::string kind : {"obj", "glb"}) {
    SCOPED_TRACE(kind);
    ExportOptions p;
    p.kind = "preview";
    p.inputs = {(dir / kind / ("synthetic_face." + kind)).string()};
    p.out = (dir / ("preview-" + kind)).string();
    p.preview_size = 128;
    p.progress = "none";
    ASSERT_EQ(ExportAndValidate(p).exported, 1);
    cv::Mat pic = cv::imread((dir / ("preview-" + kind) / ("synthetic_face." + kind + ".preview.png")).string());
    ASSERT_EQ(pic.rows, 128);
    ASSERT_EQ(pic.cols, 128);
    double red_rows = 0, blue_rows = 0;
    int red = 0, blue = 0;
    for (int r = 0; r < pic.rows; ++r)
      for (int c = 0; c < pic.cols; ++c) {
        const auto px = pic.at<cv::Vec3b>(r, c);
        if (px[2] > px[1] + 40 && px[2] > px[0] + 40) red_rows += r, ++red;
        if (px[0] > px[1] + 40 && px[0] > px[2] + 40) blue_rows += r, ++blue;
      }
    ASSERT_GT(red, 0);
    ASSERT_GT(blue, 0);
    EXPECT_GT(red_rows / red, blue_rows / blue + 10);
  }
  // The raw glTF (not through Assimp): TEXCOORD_0 uses glTF's convention, v DOWN (row = v * H - 0.5).
  const std::string glb = ReadFile(dir / "glb" / "synthetic_face.glb");
  ASSERT_EQ(glb.substr(0, 4), "glTF");
  auto u32 = [&](size_t at) { uint32_t v; std::memcpy(&v, glb.data() + at, 4); return v; };
  const uint32_t json_len = u32(12);
  auto gltf = nlohmann::json::parse(glb.substr(20, json_len));
  const size_t bin = 20 + json_len + 8;
  auto accessor = [&](int index, int comps) {
    const auto& a = gltf["accessors"][index];
    const auto& bv = gltf["bufferViews"][a["bufferView"].get<int>()];
    const size_t off = bin + bv.value("byteOffset", 0) + a.value("byteOffset", 0);
    std::vector<float> v(a["count"].get<size_t>() * comps);
    std::memcpy(v.data(), glb.data() + off, v.size() * 4);
    return v;
  };
  const auto& attrs = gltf["meshes"][0]["primitives"][0]["attributes"];
  auto pos = accessor(attrs["POSITION"].get<int>(), 3);
  auto tc = accessor(attrs["TEXCOORD_0"].get<int>(), 2);
  const auto& mat = gltf["materials"][gltf["meshes"][0]["primitives"][0]["material"].get<int>()];
  const int tex_index = mat["pbrMetallicRoughness"]["baseColorTexture"]["index"];
  // The texture is embedded (a self-contained GLB): an image with a bufferView, no uri.
  const auto& image = gltf["images"][gltf["textures"][tex_index]["source"].get<int>()];
  EXPECT_FALSE(image.contains("uri")) << image.dump();
  ASSERT_TRUE(image.contains("bufferView")) << image.dump();
  EXPECT_EQ(image.value("mimeType", ""), "image/png");
  const auto& image_view = gltf["bufferViews"][image["bufferView"].get<int>()];
  const std::string png = glb.substr(bin + image_view.value("byteOffset", 0), image_view["byteLength"].get<size_t>());
  cv::Mat tex = cv::imdecode(cv::Mat(1, static_cast<int>(png.size()), CV_8U, const_cast<char*>(png.data())), cv::IMREAD_COLOR);
  ASSERT_FALSE(tex.empty());
  EXPECT_TRUE(ReadFile(dir / "glb" / "synthetic_face.albedo.png") == png);  // the PNG beside it, byte for byte
  {  // The validator is a real check: the same GLB with a POSITION accessor that overruns its buffer fails.
    auto broken = gltf;
    broken["accessors"][attrs["POSITION"].get<int>()]["count"] = 1000000;
    std::string json = broken.dump();
    while (json.size() % 4) json += ' ';
    std::string out = glb.substr(0, 12);
    const uint32_t len = static_cast<uint32_t>(json.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += "JSON" + json + glb.substr(20 + json_len);
    const uint32_t total = static_cast<uint32_t>(out.size());
    std::memcpy(out.data() + 8, &total, 4);
    WriteFile(dir / "broken" / "broken.glb", out);
    const auto v = testing::ValidateGltf({dir / "broken" / "broken.glb"});
    EXPECT_FALSE(v.ok) << v.output;
    EXPECT_NE(v.output.find("error"), std::string::npos) << v.output;
  }
  for (int i = 36; i < 60; ++i) {
    size_t best = 0;
    double best_d = 1e30;
    for (size_t k = 0; k < pos.size() / 3; ++k) {
      double d2 = 0;
      for (int c = 0; c < 3; ++c) d2 += std::pow(pos[3 * k + c] - lm_pos[i][c].item<float>(), 2);
      if (d2 < best_d) best_d = d2, best = k;
    }
    EXPECT_EQ(Dominant(tex, tc[2 * best] * tex.cols - 0.5, tc[2 * best + 1] * tex.rows - 0.5), i >= 48 ? 0 : 2)
        << "raw glTF landmark " << i;
  }
}

TEST(ExportNormals, PointAwayFromTheHeadCentreInModelAndImageSpace) {
  auto t = render::DefaultTemplate(48, 56);
  auto verts = render::VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0))[0];
  auto outward_fraction = [&](const MeshData& m, const at::Tensor& centre) {
    auto d = ((m.positions - centre.view({1, 3})) * m.normals).sum(1);
    return (d > 0).to(torch::kFloat).mean().item<double>();
  };
  auto model_mesh = MakeMesh(t.topology, verts);
  EXPECT_GT(outward_fraction(model_mesh, torch::zeros({3})), 0.97);
  EXPECT_LT(outward_fraction(MakeMesh(t.topology, verts * torch::tensor({1.0f, 1.0f, -1.0f})), torch::zeros({3})), 0.5)
      << "a mirrored mesh must fail the same check";
  // Image space: yaw 30 degrees, scale 4 px/cm, then a crop-to-original similarity (scale 2, rotation 10 deg).
  const double yaw = 0.5236, rot = 0.1745;
  auto R = render::RotationFromPoseAngles(torch::zeros({1}), torch::full({1}, yaw), torch::zeros({1}));
  auto M = render::ComposeM(torch::full({1}, 4.0f), R.to(torch::kFloat), torch::tensor({{112.0f, 112.0f}}))[0];
  auto A = torch::tensor({{2 * std::cos(rot), -2 * std::sin(rot), 30.0}, {2 * std::sin(rot), 2 * std::cos(rot), 40.0}},
                         torch::kDouble);
  auto img = ImageSpaceVertices(verts, M, A);
  auto centre = ImageSpaceVertices(torch::zeros({1, 3}), M, A)[0];
  EXPECT_GT(outward_fraction(MakeMesh(t.topology, img), centre), 0.97);
  // The frame: (x, y) = A (M [X; 1]) and z grows away from the camera (the nose tip is nearest).
  auto xy = render::ProjectVertices(M.unsqueeze(0).to(torch::kDouble), verts.unsqueeze(0).to(torch::kDouble))[0];
  auto expect_xy = xy.matmul(A.slice(1, 0, 2).t()) + A.select(1, 2).view({1, 2});
  EXPECT_TRUE(torch::allclose(img.slice(1, 0, 2).to(torch::kDouble), expect_xy, 1e-5, 1e-3));
  const int64_t nose = t.topology.landmarks68[30].item<int64_t>();
  EXPECT_NEAR(img[nose][2].item<double>(), img.select(1, 2).min().item<double>(), 0.05 * 2 * 4 * 7.6);
  // |z| scale: the model's z extent (cm) x 4 px/cm x 2 at yaw 0 equals the image z extent.
  auto M0 = render::ComposeM(torch::full({1}, 4.0f), torch::eye(3).unsqueeze(0), torch::tensor({{0.0f, 0.0f}}))[0];
  auto img0 = ImageSpaceVertices(verts, M0, A);
  EXPECT_NEAR(img0[nose][2].item<double>(), -verts[nose][2].item<double>() * 8, 1e-3);
}

TEST_F(Export, ImageSpaceMeshMatchesTheStoredImageVertices) {
  auto o = Options("obj", "image-space");
  o.space = "image";
  ASSERT_EQ(ExportAndValidate(o).exported, 3);
  batch::ShardReader shard(Shard().string());
  const auto& sz = shard.layout().sizes;
  auto topo = TopologyOfShard(shard);
  auto j = ReadJson(Out("image-space") / "export.json");
  for (const auto& item : j["items"]) {
    const int64_t row = item["row"];
    auto img = Floats(shard, "/vertices/image", row, {sz.num_vertices, 2});
    auto model = Floats(shard, "/vertices/model", row, {sz.num_vertices, 3});
    auto M = Floats(shard, "/latents/projection", row, {2, 4});
    auto a = shard.Doubles("/images/crop_to_original", row);
    const double scale = std::sqrt(std::abs(a[0] * a[4] - a[1] * a[3]));
    Assimp::Importer im;
    const aiScene* sc = Import(im, Out("image-space") / item["files"][0].get<std::string>());
    ASSERT_NE(sc, nullptr);
    const aiMesh* m = sc->mMeshes[0];
    ASSERT_EQ(int64_t(m->mNumVertices), sz.num_vertices);
    auto m0 = M[0].slice(0, 0, 3), m1 = M[1].slice(0, 0, 3);
    const double s = (m0.norm().item<double>() + m1.norm().item<double>()) / 2;
    auto axis = torch::cross(m0 / m0.norm(), m1 / m1.norm(), 0);
    for (unsigned i = 0; i < m->mNumVertices; ++i) {
      const auto uv = m->mTextureCoords[0][i];
      const int c = int(std::floor(uv.x * sz.uv_cols)), r = int(std::floor((1 - uv.y) * sz.uv_rows));
      const int64_t v = topo.vertex_of_pixel[r][c].item<int64_t>();
      const double x = img[v][0].item<double>(), y = img[v][1].item<double>();
      ASSERT_NEAR(m->mVertices[i].x, x, 1e-3 * (1 + std::abs(x)));
      ASSERT_NEAR(m->mVertices[i].y, y, 1e-3 * (1 + std::abs(y)));
      const double z = scale * s * (axis * model[v]).sum().item<double>();
      ASSERT_NEAR(m->mVertices[i].z, z, 1e-3 * (1 + std::abs(z)));
    }
  }
}

TEST_F(Export, MapsRoundTripWithinQuantisationAndShadingMatchesTheRender) {
  batch::ShardReader shard(Shard().string());
  int64_t row = 0;
  while (shard.status(row) != "ok") ++row;
  const std::string id = shard.ids()[row];
  std::map<std::string, int> taken;
  const std::string stem = OutputStem(id, taken);
  auto o = Options("maps", "maps");
  o.ids = id;
  auto s = ExportAndValidate(o);
  ASSERT_EQ(s.exported, 1) << s.ToString();
  const auto& sz = shard.layout().sizes;
  auto topo = TopologyOfShard(shard);
  auto j = ReadJson(Out("maps") / "export.json");
  const auto& item = j["items"][0];
  ASSERT_EQ(item["files"].size(), 7u);
  for (const std::string name : {"shape", "shape_proxy", "albedo", "albedo_proxy", "shape_residual", "albedo_residual"}) {
    SCOPED_TRACE(name);
    auto d = ReadMapPng16((Out("maps") / (stem + "." + name + ".png")).string());
    EXPECT_EQ(d.name, name);
    EXPECT_TRUE(torch::equal(d.mask, topo.mask));
    auto want = Floats(shard, "/maps/" + name, row, {3, sz.uv_rows, sz.uv_cols});
    for (int c = 0; c < 3; ++c) {
      const double lo = item["ranges"][name]["min"][c], hi = item["ranges"][name]["max"][c];
      EXPECT_DOUBLE_EQ(lo, d.ranges[c][0]);
      EXPECT_DOUBLE_EQ(hi, d.ranges[c][1]);
      EXPECT_NEAR(lo, want[c].masked_select(topo.mask).min().item<double>(), 1e-6);
      const double err = (d.map[c] - want[c]).masked_select(topo.mask).abs().max().item<double>();
      EXPECT_LE(err, (hi - lo) / 65535.0 * 0.5 + 1e-6 * (1 + std::abs(hi)));
    }
  }
  // Shading = vertex colour / albedo of the renderer (its own normals and view rotation).
  auto shading = ReadMapPng16((Out("maps") / (stem + ".shading.png")).string());
  auto shape = Floats(shard, "/maps/shape", row, {1, 3, sz.uv_rows, sz.uv_cols});
  auto albedo = torch::ones({1, sz.num_vertices, 3});
  auto r = render::Render(topo, render::VerticesFromUVMap(topo, shape), albedo,
                          Floats(shard, "/latents/projection", row, {1, 2, 4}), Floats(shard, "/latents/lighting", row, {1, 27}), 64, 64);
  auto want = render::UVMapFromVertices(topo, r.vertex_color)[0];
  for (int c = 0; c < 3; ++c) {
    const double span = shading.ranges[c][1] - shading.ranges[c][0];
    EXPECT_LE((shading.map[c] - want[c]).masked_select(topo.mask).abs().max().item<double>(), span / 65535.0 + 1e-5);
  }
  // EXR: the raw float values.
  auto e = Options("maps", "maps-exr");
  e.ids = id;
  e.maps = "albedo";
  e.map_format = "exr";
  ASSERT_EQ(ExportAndValidate(e).exported, 1);
  cv::Mat exr = cv::imread((Out("maps-exr") / (stem + ".albedo.exr")).string(), cv::IMREAD_UNCHANGED);
  ASSERT_EQ(exr.type(), CV_32FC4);
  auto want_albedo = Floats(shard, "/maps/albedo", row, {3, sz.uv_rows, sz.uv_cols});
  for (int rr = 0; rr < sz.uv_rows; rr += 5)
    for (int cc = 0; cc < sz.uv_cols; cc += 3) {
      const auto px = exr.at<cv::Vec4f>(rr, cc);
      const bool in = topo.mask[rr][cc].item<bool>();
      EXPECT_EQ(px[3], in ? 1.0f : 0.0f);
      if (in) {
        EXPECT_FLOAT_EQ(px[2], want_albedo[0][rr][cc].item<float>());
      }
    }
}

TEST_F(Export, OverlayHasTheExpectedSizeAndShowsTheFace) {
  auto o = Options("overlay", "overlay");
  auto s = ExportAndValidate(o);
  ASSERT_EQ(s.exported, 3) << s.ToString();
  auto j = ReadJson(Out("overlay") / "export.json");
  for (const auto& item : j["items"]) {
    cv::Mat img = cv::imread((Out("overlay") / item["files"][0].get<std::string>()).string());
    batch::ShardReader shard(Shard().string());
    cv::Mat src = cv::imread(shard.String("/images/source", item["row"].get<int64_t>()));
    ASSERT_FALSE(src.empty());
    ASSERT_EQ(img.cols, 3 * src.cols);
    ASSERT_EQ(img.rows, src.rows);
    const int W = src.cols;
    cv::Mat left = img.colRange(0, W), middle = img.colRange(W, 2 * W), right = img.colRange(2 * W, 3 * W);
    EXPECT_EQ(cv::norm(left, src, cv::NORM_INF), 0);
    auto fraction_changed = [&](const cv::Mat& a, const cv::Mat& b) {
      cv::Mat diff;
      cv::absdiff(a, b, diff);
      cv::cvtColor(diff, diff, cv::COLOR_BGR2GRAY);
      return cv::countNonZero(diff > 8) / double(src.total());
    };
    const double rendered = fraction_changed(left, middle);
    EXPECT_GT(rendered, 0.01);  // the render is composited ...
    EXPECT_LT(rendered, 0.9);   // ... over the image, not instead of it
    // The right panel adds the mesh and landmarks on top of the middle one (which has none).
    const double drawn = fraction_changed(middle, right);
    EXPECT_GT(drawn, 0.002);
    EXPECT_LT(drawn, rendered + 0.05);
  }
  auto small = Options("overlay", "overlay-small");
  small.overlay_max_size = 150;
  small.range = "0:1";
  ASSERT_EQ(ExportAndValidate(small).exported, 1);
  auto js = ReadJson(Out("overlay-small") / "export.json");
  cv::Mat img = cv::imread((Out("overlay-small") / js["items"][0]["files"][0].get<std::string>()).string());
  EXPECT_EQ(img.rows, 150);
  EXPECT_EQ(img.cols, 450);
}

TEST_F(Export, SelectsByIdsStatusAndRange) {
  batch::ShardReader shard(Shard().string());
  ASSERT_EQ(shard.size(), 4);
  std::vector<std::string> ok, failed;
  for (int64_t i = 0; i < shard.size(); ++i) (shard.status(i) == "ok" ? ok : failed).push_back(shard.ids()[i]);
  ASSERT_EQ(failed.size(), 1u);
  auto ids_of = [](const ExportSummary& s) {
    std::set<std::string> out;
    for (const auto& it : s.items)
      if (it.status == "exported") out.insert(it.id);
    return out;
  };
  auto o = Options("ply", "sel-ids");
  WriteFile(dir_->path() / "ids.txt", "# two ids\n" + ok[2] + "\n" + ok[0] + "\n");
  o.ids = "@" + (dir_->path() / "ids.txt").string();
  EXPECT_EQ(ids_of(ExportAndValidate(o)), (std::set<std::string>{ok[0], ok[2]}));
  o.ids = ok[1];
  o.out = Out("sel-one").string();
  EXPECT_EQ(ids_of(ExportAndValidate(o)), (std::set<std::string>{ok[1]}));
  // --status failed: the failed image is selected, has no fitted values, and is recorded as failed.
  o = Options("ply", "sel-failed");
  o.status = "failed";
  auto s = ExportAndValidate(o);
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ(s.items[0].id, failed[0]);
  EXPECT_EQ(s.items[0].status, "failed");
  EXPECT_NE(s.items[0].reason.find("fit status is 'failed'"), std::string::npos) << s.items[0].reason;
  EXPECT_EQ(s.ExitCode(), kExitSomeFailed);
  o = Options("ply", "sel-all");
  o.status = "all";
  s = ExportAndValidate(o);
  EXPECT_EQ(s.items.size(), 4u);
  EXPECT_EQ(s.exported, 3);
  // --range rows [1, 3) in file order, then the status filter.
  o = Options("glb", "sel-range");
  o.range = "1:3";
  o.status = "all";
  s = ExportAndValidate(o);
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].id, shard.ids()[1]);
  EXPECT_EQ(s.items[1].id, shard.ids()[2]);
  // Several inputs: --range counts the rows of the inputs in order; an id seen before is exported once.
  const auto second = (dir_->path() / "noverts" / "shard-00000-of-00001.h5").string();
  o = Options("maps", "sel-two");
  o.inputs = {Shard().string(), second};
  o.maps = "albedo";
  o.range = "3:6";
  s = ExportAndValidate(o);
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(std::make_pair(s.items[0].input, s.items[0].row), std::make_pair(0, int64_t{3}));
  EXPECT_EQ(std::make_pair(s.items[1].input, s.items[1].row), std::make_pair(1, int64_t{0}));
  EXPECT_EQ(std::make_pair(s.items[2].input, s.items[2].row), std::make_pair(1, int64_t{1}));
  EXPECT_EQ(s.exported, 3);
  o.range = "";
  o.out = Out("sel-dup").string();
  s = ExportAndValidate(o);
  EXPECT_EQ(s.items.size(), 3u);  // the 3 ok ids, each once (from the first input)
  for (const auto& it : s.items) EXPECT_EQ(it.input, 0);
  // An unknown id is recorded as failed; the others go on.
  o = Options("obj", "sel-unknown");
  o.ids = ok[0] + ",no/such/id";
  s = ExportAndValidate(o);
  EXPECT_EQ(s.exported, 1);
  EXPECT_EQ(s.failed, 1);
  auto j = ReadJson(Out("sel-unknown") / "export.json");
  EXPECT_EQ(j["counts"]["failed"], 1);
}

TEST_F(Export, OneBadImageIsRecordedAndTheExportGoesOn) {
  // The overlay needs the original image: remove one after fitting.
  batch::ShardReader shard(Shard().string());
  const fs::path copy = dir_->path() / "fit-copy.h5";
  fs::copy_file(Shard(), copy, fs::copy_options::overwrite_existing);
  int64_t row = 0;
  while (shard.status(row) != "ok") ++row;
  const std::string src = shard.String("/images/source", row);
  const std::string moved = src + ".moved";
  fs::rename(src, moved);
  auto o = Options("overlay", "bad-image");
  o.inputs = {copy.string()};
  auto s = ExportAndValidate(o);
  fs::rename(moved, src);
  EXPECT_EQ(s.exported, 2);
  EXPECT_EQ(s.failed, 1);
  auto j = ReadJson(Out("bad-image") / "export.json");
  bool found = false;
  for (const auto& it : j["items"])
    if (it["status"] == "failed") {
      found = true;
      EXPECT_EQ(it["id"], shard.ids()[row]);
      EXPECT_NE(it["reason"].get<std::string>().find(src), std::string::npos) << it["reason"];
      EXPECT_TRUE(it["files"].empty());
    }
  EXPECT_TRUE(found);
}

TEST_F(Export, BadInputsNameTheFileAndTheProblem) {
  auto expect_error = [&](const ExportOptions& o, const std::string& file, const std::string& problem) {
    try {
      ExportAndValidate(o);
      ADD_FAILURE() << "no error for " << file;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(problem), std::string::npos) << e.what();
    }
  };
  const auto noverts = (dir_->path() / "noverts" / "shard-00000-of-00001.h5").string();
  auto o = Options("obj", "bad");
  o.inputs = {Shard().string(), noverts};
  expect_error(o, noverts, "/vertices/model");
  o.component = "albedo_proxy";
  o.kind = "overlay";
  expect_error(o, noverts, "/maps/shape");  // an overlay needs /vertices/model or /maps/shape
  o = Options("maps", "bad");
  o.inputs = {noverts};
  o.maps = "shape_residual";
  expect_error(o, noverts, "/maps/shape_residual");
  const auto v9 = (dir_->path() / "v9.h5").string();
  {
    io::hdf5::RowWriter w(v9);
    w.Attr("/", "format", std::string(batch::kShardFormat));
    w.Attr("/", "schema_version", int64_t{9});
    w.Close();
  }
  o = Options("glb", "bad");
  o.inputs = {v9};
  expect_error(o, v9, "version 9");
  const auto text = (dir_->path() / "text.h5").string();
  WriteFile(text, "not an HDF5 file\n");
  o.inputs = {text};
  try {
    ExportAndValidate(o);
    ADD_FAILURE() << "no error for a text file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
  // A model file is HDF5 but no shard.
  o.inputs = {(dir_->path() / "model.h5").string()};
  expect_error(o, o.inputs[0], "not a facebatch shard");
}

TEST_F(Export, CommandLineWritesFilesAndExitCodes) {
  auto r = RunCli({"export", "obj", Shard().string(), "--out", Out("cli").string(), "--status", "all", "--threads", "1",
                   "--progress", "none"});
  EXPECT_EQ(r.exit_code, kExitSomeFailed) << r.output;  // the failed image has no fitted values
  auto j = ReadJson(Out("cli") / "export.json");
  EXPECT_EQ(j["counts"]["exported"], 3);
  EXPECT_EQ(j["kind"], "obj");
  EXPECT_NE(j["command"].get<std::string>().find("export obj"), std::string::npos);
  r = RunCli({"export", "ply", Shard().string(), "--out", Out("cli-ok").string(), "--progress", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto noverts = (dir_->path() / "noverts" / "shard-00000-of-00001.h5").string();
  r = RunCli({"export", "glb", noverts, "--out", Out("cli-bad").string()});
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_NE(r.output.find(noverts + ": has no dataset /vertices/model"), std::string::npos) << r.output;
}

TEST(ExportNames, StemsAreSanitisedAndUnique) {
  std::map<std::string, int> taken;
  EXPECT_EQ(OutputStem("300w-lp/AFW/img 01.jpg", taken), "300w-lp_AFW_img_01.jpg");
  EXPECT_EQ(OutputStem("300w-lp/AFW/img 01.jpg", taken), "300w-lp_AFW_img_01.jpg-2");
  EXPECT_EQ(OutputStem("300w-lp_AFW/img_01.jpg", taken), "300w-lp_AFW_img_01.jpg-3");
  EXPECT_EQ(OutputStem("../etc/passwd", taken), "_._etc_passwd");
  EXPECT_EQ(OutputStem("", taken), "image");
}

}  // namespace
}  // namespace facebatch::exporter
