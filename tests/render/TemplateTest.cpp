#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "core/Error.h"
#include "render/Template.h"
#include "render/Topology.h"

namespace facebatch::render {
namespace {

TEST(Template, CommittedObjMatchesCompiledIn) {
  std::ifstream f(std::string(FACEBATCH_SAMPLES) + "/template/canonical_face.obj");
  ASSERT_TRUE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), std::string(CanonicalFaceObjText()));
  const auto& mesh = CanonicalFaceMesh();
  EXPECT_EQ(mesh.positions.size(), 468u);
  EXPECT_EQ(mesh.triangles.size(), 898u);
  EXPECT_EQ(mesh.landmarks68[8], 152);  // chin
  EXPECT_EQ(mesh.landmarks68[30], 4);   // nose tip
  // The committed UVs are exactly mirror symmetric (up to the printed precision).
  ASSERT_EQ(mesh.mirror.size(), 468u);
  for (size_t k = 0; k < 468; ++k) {
    const auto& a = mesh.uvs[k];
    const auto& b = mesh.uvs[mesh.mirror[k]];
    EXPECT_NEAR(a[0] + b[0], 1.0, 2e-6);
    EXPECT_NEAR(a[1], b[1], 2e-6);
    EXPECT_FLOAT_EQ(mesh.positions[k][0], -mesh.positions[mesh.mirror[k]][0]);
  }
}

TEST(Template, RejectsUnknownVersionAndBadFaces) {
  EXPECT_THROW(ParseTemplateMesh("# facebatch-template 2\n", "x.obj"), InputError);
  EXPECT_THROW(ParseTemplateMesh("v 0 0 0\n", "x.obj"), InputError);
  std::string lm = "# landmarks68";
  for (int i = 0; i < 68; ++i) lm += " 0";
  EXPECT_THROW(ParseTemplateMesh("# facebatch-template 1\n" + lm + "\nv 0 0 0\nvt 0 0\nf 1 2 3\n", "x.obj"),
               InputError);
  try {
    LoadTemplateMesh("/nonexistent/t.obj");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/t.obj"), std::string::npos);
  }
}

TEST(Template, PaperResolution) {
  const auto t = DefaultTemplate(192, 224);
  const auto& topo = t.topology;
  EXPECT_EQ(topo.uv_rows, 192);
  EXPECT_EQ(topo.uv_cols, 224);
  const int64_t n = topo.num_vertices();
  std::cout << "[template] vertices at 192x224: " << n << ", triangles: " << topo.num_triangles()
            << ", mask fraction " << double(n) / (192 * 224) << ", raw mask asymmetry " << t.raw_mask_asymmetry
            << ", raw shape asymmetry (cm) " << t.raw_shape_asymmetry << "\n";
  for (int r = 0; r < kNumRegions; ++r)
    std::cout << "[template] region " << RegionName(r) << ": row0 " << topo.regions[r].row0 << " col0 "
              << topo.regions[r].col0 << " rows " << topo.regions[r].rows << " cols " << topo.regions[r].cols << "\n";
  EXPECT_EQ(n, topo.mask.sum().item<int64_t>());
  // The face oval fills most of the UV square (paper: 39,111 of 43,008).
  EXPECT_GT(n, 28000);
  EXPECT_LT(n, 43008);
  // Rasterisation ties only: tiny raw asymmetry before enforcement.
  EXPECT_LT(t.raw_mask_asymmetry, 0.01);
  EXPECT_LT(t.raw_shape_asymmetry, 0.05);
  // Exact symmetry after: mask, and the shape under x -> -x.
  EXPECT_TRUE(topo.mask.equal(topo.mask.flip({1})));
  auto mirrored = t.mean_shape.flip({2}) * torch::tensor({-1.0f, 1.0f, 1.0f}).view({3, 1, 1});
  EXPECT_LT((t.mean_shape - mirrored).abs().max().item<float>(), 1e-5);
  // Face is about 15.5 cm wide, nose in front.
  auto verts = VerticesFromUVMap(topo, t.mean_shape.unsqueeze(0))[0];
  EXPECT_NEAR(verts.select(1, 0).max().item<float>(), 7.74, 0.3);
  auto nose = verts[topo.landmarks68[30].item<int64_t>()];
  EXPECT_NEAR(nose[0].item<float>(), 0.0, 0.1);
  EXPECT_GT(nose[2].item<float>(), 7.0);
  EXPECT_EQ(t.mean_albedo.sizes(), (std::vector<int64_t>{3, 192, 224}));
  EXPECT_GE(t.mean_albedo.min().item<float>(), 0.0f);
  EXPECT_LE(t.mean_albedo.max().item<float>(), 1.0f);
}

TEST(Template, LandmarksInsideMaskAndFlipConsistent) {
  for (auto [U, V] : {std::pair{192, 224}, std::pair{64, 64}, std::pair{48, 56}}) {
    const auto t = DefaultTemplate(U, V);
    const auto& topo = t.topology;
    auto pix = topo.pixel_of_vertex.index_select(0, topo.landmarks68);
    for (int i = 0; i < 68; ++i) {
      const int64_t p = pix[i].item<int64_t>();
      const double dr = double(p / V) - t.landmarks68_uv[i][0].item<double>();
      const double dc = double(p % V) - t.landmarks68_uv[i][1].item<double>();
      EXPECT_LT(std::hypot(dr, dc), 0.02 * V + 1.5) << "landmark " << i << " at " << U << "x" << V;
    }
    // Interior landmarks (brows, nose, eyes, mouth) are strictly inside the face.
    for (int i = 17; i < 68; ++i) {
      const int64_t p = pix[i].item<int64_t>();
      const int64_t r = p / V, c = p % V;
      ASSERT_TRUE(r > 0 && r + 1 < U && c > 0 && c + 1 < V);
      EXPECT_TRUE(topo.mask[r - 1][c].item<bool>() && topo.mask[r + 1][c].item<bool>() &&
                  topo.mask[r][c - 1].item<bool>() && topo.mask[r][c + 1].item<bool>());
    }
    // Flip map: an involution onto masked pixels at mirrored columns.
    ASSERT_TRUE((topo.flip >= 0).all().item<bool>());
    EXPECT_TRUE(topo.flip.index_select(0, topo.flip).equal(torch::arange(topo.num_vertices())));
    auto p = topo.pixel_of_vertex, q = topo.pixel_of_vertex.index_select(0, topo.flip);
    EXPECT_TRUE((p.div(V, "floor") == q.div(V, "floor")).all().item<bool>());
    EXPECT_TRUE((p.remainder(V) + q.remainder(V) == V - 1).all().item<bool>());
    // Mirrored landmarks: 36 (outer corner, left in image) <-> 45.
    EXPECT_EQ(topo.flip[topo.landmarks68[36].item<int64_t>()].item<int64_t>(), topo.landmarks68[45].item<int64_t>());
    // Regions inside the map, eyes mirrored, multiples of 8 at the paper size.
    for (int r = 0; r < kNumRegions; ++r) {
      const auto& b = topo.regions[r];
      EXPECT_GE(b.row0, 0);
      EXPECT_GE(b.col0, 0);
      EXPECT_LE(b.row0 + b.rows, U);
      EXPECT_LE(b.col0 + b.cols, V);
      EXPECT_GT(b.rows, 0);
      if (U == 192) {
        EXPECT_EQ(b.rows % 8, 0) << RegionName(r);
        EXPECT_EQ(b.cols % 8, 0) << RegionName(r);
      }
    }
    EXPECT_EQ(topo.regions[kLeftEye].col0 + topo.regions[kLeftEye].cols + topo.regions[kRightEye].col0, V);
    EXPECT_EQ(topo.regions[kLeftEye].row0, topo.regions[kRightEye].row0);
  }
}

TEST(Template, RegionsContainTheirLandmarks) {
  const auto t = DefaultTemplate(192, 224);
  auto inside = [&](int region, int first, int last) {
    const auto& b = t.topology.regions[region];
    for (int i = first; i <= last; ++i) {
      const float r = t.landmarks68_uv[i][0].item<float>(), c = t.landmarks68_uv[i][1].item<float>();
      EXPECT_TRUE(r >= b.row0 && r < b.row0 + b.rows && c >= b.col0 && c < b.col0 + b.cols)
          << RegionName(region) << " landmark " << i;
    }
  };
  inside(kLeftEye, 36, 41);
  inside(kRightEye, 42, 47);
  inside(kNose, 27, 35);
  inside(kMouth, 48, 67);
  // Left eye is on the image left.
  EXPECT_LT(t.topology.regions[kLeftEye].col0, 224 / 2);
}

TEST(Topology, SmallMaskTrianglesAndWinding) {
  // 3 x 4 full mask: 12 vertices, 2 * 2 * 3 triangles, all counter-clockwise
  // when the grid is laid out as a frontal face (x = col, y = -row).
  auto mask = torch::ones({3, 4}, torch::kBool);
  auto lm = torch::ones({68, 2});
  auto topo = BuildTopology(mask, lm);
  EXPECT_EQ(topo.num_vertices(), 12);
  EXPECT_EQ(topo.num_triangles(), 12);
  auto pix = topo.pixel_of_vertex;
  auto xyz = torch::stack({pix.remainder(4).to(torch::kFloat), -pix.div(4, "floor").to(torch::kFloat),
                           torch::zeros({12})}, 1);
  auto tri = topo.triangles;
  auto a = xyz.index_select(0, tri.select(1, 0)), b = xyz.index_select(0, tri.select(1, 1)),
       c = xyz.index_select(0, tri.select(1, 2));
  auto z = torch::cross(b - a, c - a, 1).select(1, 2);
  EXPECT_TRUE((z > 0).all().item<bool>());
  EXPECT_TRUE(torch::allclose(z, torch::ones_like(z)));
  // Normals of a flat grid point to +z.
  auto n = VertexNormals(topo, xyz.unsqueeze(0));
  EXPECT_TRUE(torch::allclose(n[0], torch::tensor({0.0f, 0.0f, 1.0f}).expand({12, 3}), 1e-6, 1e-6));
  // UV convention.
  EXPECT_FLOAT_EQ(topo.vertex_uv[0][0].item<float>(), 0.5f / 4);
  EXPECT_FLOAT_EQ(topo.vertex_uv[0][1].item<float>(), 1.0f - 0.5f / 3);
  // Gather/scatter round trip.
  auto map = torch::rand({2, 3, 3, 4});
  EXPECT_TRUE(UVMapFromVertices(topo, VerticesFromUVMap(topo, map)).equal(map));
  // A pixel without a full block is dropped by CleanMask.
  auto m2 = torch::zeros({4, 4}, torch::kBool);
  m2.slice(0, 0, 2).slice(1, 0, 2).fill_(true);
  m2[3][3] = true;
  EXPECT_EQ(CleanMask(m2).sum().item<int64_t>(), 4);
}

TEST(Topology, NormalsAreAreaWeighted) {
  // Two triangles sharing vertex 0: a big one in the z=0 plane and a small
  // one in the x=0 plane; the normal at 0 leans towards the big one's normal.
  FaceTopology topo;
  topo.triangles = torch::tensor({0, 1, 2, 0, 3, 4}, torch::kLong).view({2, 3});
  topo.pixel_of_vertex = torch::arange(5);
  auto v = torch::tensor({0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0},
                         torch::kDouble).view({1, 5, 3});
  auto n = VertexNormals(topo, v)[0][0];
  // Face normals: (0,0,9) and (1,0,0) -> normalised (1, 0, 9) / sqrt(82).
  EXPECT_NEAR(n[0].item<double>(), 1 / std::sqrt(82.0), 1e-12);
  EXPECT_NEAR(n[2].item<double>(), 9 / std::sqrt(82.0), 1e-12);
}

}  // namespace
}  // namespace facebatch::render

namespace facebatch::render {
namespace {

TEST(Template, AnySizeIncludingOddAndTiny) {
  for (auto [U, V] : {std::pair{8, 8}, std::pair{16, 20}, std::pair{33, 47}, std::pair{97, 31}}) {
    const auto t = DefaultTemplate(U, V);
    const auto& topo = t.topology;
    ASSERT_GT(topo.num_vertices(), 0) << U << "x" << V;
    EXPECT_TRUE(topo.mask.equal(topo.mask.flip({1}))) << U << "x" << V;
    ASSERT_TRUE((topo.flip >= 0).all().item<bool>());
    EXPECT_TRUE(topo.flip.index_select(0, topo.flip).equal(torch::arange(topo.num_vertices())));
    EXPECT_TRUE((topo.landmarks68 >= 0).all().item<bool>());
    for (int r = 0; r < kNumRegions; ++r) {
      EXPECT_LE(topo.regions[r].row0 + topo.regions[r].rows, U);
      EXPECT_LE(topo.regions[r].col0 + topo.regions[r].cols, V);
    }
    auto n = VertexNormals(topo, VerticesFromUVMap(topo, t.mean_shape.unsqueeze(0)));
    EXPECT_TRUE(torch::isfinite(n).all().item<bool>());
    // Normals of the frontal face point mostly towards the camera.
    EXPECT_GT(n[0].select(1, 2).mean().item<float>(), 0.5f);
  }
  EXPECT_THROW(DefaultTemplate(4, 64), UsageError);
}

}  // namespace
}  // namespace facebatch::render
