#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/Error.h"
#include "render/Lighting.h"
#include "render/Projection.h"
#include "render/Rasterise.h"
#include "render/Render.h"
#include "render/Template.h"
#include "render/Topology.h"

namespace facebatch::render {
namespace {

constexpr double kPi = 3.14159265358979323846;

// M = s [1 0 0 tx; 0 -1 0 ty]: frontal view, model y up -> image y down.
at::Tensor FrontalM(double s, double tx, double ty, int64_t B = 1, at::ScalarType dt = at::kFloat) {
  auto M = torch::tensor({s, 0.0, 0.0, tx, 0.0, -s, 0.0, ty}, torch::kDouble).view({1, 2, 4}).expand({B, 2, 4});
  return M.to(dt).contiguous();
}

// Grid mesh of (rows x cols) vertices from a full mask: x = col, y = -row (model units).
FaceTopology Grid(int rows, int cols) { return BuildTopology(torch::ones({rows, cols}, torch::kBool), torch::zeros({68, 2})); }

at::Tensor GridVertices(const FaceTopology& t, double step, double bump, at::ScalarType dt) {
  auto pix = t.pixel_of_vertex;
  auto c = pix.remainder(t.uv_cols).to(torch::kDouble), r = pix.div(t.uv_cols, "floor").to(torch::kDouble);
  auto x = (c - 0.5 * (t.uv_cols - 1)) * step, y = -(r - 0.5 * (t.uv_rows - 1)) * step;
  auto z = bump * torch::cos(0.7 * c) * torch::sin(0.9 * r) + 0.3 * c;
  return torch::stack({x, y, z}, 1).unsqueeze(0).to(dt);
}

// Coverage count of a single-triangle mesh at H x W.
at::Tensor Cover(const at::Tensor& xy, int H, int W) {
  auto tri = torch::tensor({0, 1, 2}, torch::kLong).view({1, 3});
  auto depth = torch::zeros({1, 3});
  return Rasterise(xy.view({1, 3, 2}).to(torch::kFloat).contiguous(), depth, tri, {H, W}).triangle_id[0] >= 0;
}

TEST(Rasterise, SingleTriangleCoverage) {
  // Legs along the axes, no pixel centre on an edge: pixels with i, j >= 0 and i + j <= 9.
  auto cov = Cover(torch::tensor({-0.25, -0.25, 9.75, -0.25, -0.25, 9.75}), 16, 16);
  EXPECT_EQ(cov.sum().item<int64_t>(), 55);
  EXPECT_TRUE(cov[0][9].item<bool>());
  EXPECT_FALSE(cov[1][9].item<bool>());
  // Clockwise and counter-clockwise give the same coverage.
  auto cov2 = Cover(torch::tensor({-0.25, -0.25, -0.25, 9.75, 9.75, -0.25}), 16, 16);
  EXPECT_TRUE(cov.equal(cov2));
}

TEST(Rasterise, TopLeftRuleIsWatertight) {
  // A square with corners on pixel centres split along a diagonal through pixel
  // centres: every pixel of [0, 8) x [0, 8) covered exactly once, column 8 and row 8 not.
  for (int variant = 0; variant < 4; ++variant) {
    at::Tensor a, b;
    if (variant % 2 == 0) {
      a = torch::tensor({2.0, 3.0, 10.0, 3.0, 10.0, 11.0});
      b = torch::tensor({2.0, 3.0, 10.0, 11.0, 2.0, 11.0});
    } else {
      a = torch::tensor({10.0, 3.0, 2.0, 11.0, 2.0, 3.0});
      b = torch::tensor({10.0, 3.0, 10.0, 11.0, 2.0, 11.0});
    }
    if (variant >= 2) std::swap(a, b);
    auto ca = Cover(a, 16, 16).to(torch::kInt), cb = Cover(b, 16, 16).to(torch::kInt);
    auto total = ca + cb;
    EXPECT_EQ(total.max().item<int>(), 1) << variant;
    auto expected = torch::zeros({16, 16}, torch::kInt);
    expected.slice(0, 3, 11).slice(1, 2, 10).fill_(1);
    EXPECT_TRUE(total.equal(expected)) << variant;
  }
}

TEST(Rasterise, ZeroAreaAndOutsideAndEmpty) {
  EXPECT_EQ(Cover(torch::tensor({1.0, 1.0, 5.0, 5.0, 9.0, 9.0}), 16, 16).sum().item<int64_t>(), 0);
  EXPECT_EQ(Cover(torch::tensor({40.0, 1.0, 50.0, 5.0, 45.0, 9.0}), 16, 16).sum().item<int64_t>(), 0);
  EXPECT_EQ(Cover(torch::tensor({-10.0, -10.0, -2.0, -10.0, -2.0, -2.0}), 16, 16).sum().item<int64_t>(), 0);
  auto tri = torch::tensor({0, 1, 2}, torch::kLong).view({1, 3});
  auto out = Rasterise(torch::zeros({0, 3, 2}), torch::zeros({0, 3}), tri, {8, 8});
  EXPECT_EQ(out.triangle_id.sizes(), (std::vector<int64_t>{0, 8, 8}));
  // Named errors at the entry.
  EXPECT_THROW(Rasterise(torch::zeros({1, 3, 2}, torch::kDouble), torch::zeros({1, 3}), tri), Error);
  EXPECT_THROW(Rasterise(torch::zeros({1, 2, 3}).transpose(1, 2), torch::zeros({1, 3}), tri), Error);
  EXPECT_THROW(Rasterise(torch::zeros({1, 2, 2}), torch::zeros({1, 2}), tri), Error);
  try {
    Rasterise(torch::zeros({1, 3, 2}), torch::zeros({1, 4}), tri);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("depth"), std::string::npos);
  }
}

// Reference rasteriser for one image: every pixel centre against every triangle,
// coverage by the edge functions evaluated from each edge's smaller vertex id with
// the top-left rule, depth by barycentrics; the first triangle of least depth wins.
struct ReferenceRaster {
  std::vector<int64_t> ids;
  std::vector<float> z;
};

ReferenceRaster BruteForce(const at::Tensor& screen, const at::Tensor& depth, const at::Tensor& triangles, int H, int W) {
  auto xy = screen.accessor<float, 2>();
  auto d = depth.accessor<float, 1>();
  auto tri = triangles.accessor<int64_t, 2>();
  ReferenceRaster ref{std::vector<int64_t>(H * W, -1), std::vector<float>(H * W, INFINITY)};
  for (int64_t f = 0; f < triangles.size(0); ++f) {
    int64_t v[3] = {tri[f][0], tri[f][1], tri[f][2]};
    auto X = [&](int k) { return static_cast<double>(xy[v[k]][0]); };
    auto Y = [&](int k) { return static_cast<double>(xy[v[k]][1]); };
    const double area = (X(1) - X(0)) * (Y(2) - Y(0)) - (Y(1) - Y(0)) * (X(2) - X(0));
    if (area == 0) continue;
    if (area < 0) std::swap(v[1], v[2]);  // interior positive from here on
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        bool covered = true;
        double w[3];
        for (int k = 0; k < 3 && covered; ++k) {  // edge opposite vertex k: a -> c
          const int a = (k + 1) % 3, c = (k + 2) % 3;
          const bool flip = v[a] > v[c];
          const int s0 = flip ? c : a, s1 = flip ? a : c;
          w[k] = (X(s1) - X(s0)) * (y - Y(s0)) - (Y(s1) - Y(s0)) * (x - X(s0));
          if (flip) w[k] = -w[k];
          const double dx = X(c) - X(a), dy = Y(c) - Y(a);
          const bool top_left = dy < 0 || (dy == 0 && dx > 0);
          covered = w[k] > 0 || (w[k] == 0 && top_left);
        }
        if (!covered) continue;
        const double z = (w[0] * d[v[0]] + w[1] * d[v[1]] + w[2] * d[v[2]]) / std::abs(area);
        if (z < ref.z[y * W + x]) ref.z[y * W + x] = static_cast<float>(z), ref.ids[y * W + x] = f;
      }
  }
  return ref;
}

TEST(Rasterise, MatchesBruteForceOnDenseMeshes) {
  // Three meshes at 48 x 40: a grid whose vertices and edges lie on pixel centres
  // (every tie decided by the top-left rule), a rotated jittered sub-pixel grid
  // (the fit's case: most triangles hold no pixel centre), and that grid with a
  // second sheet in front of part of it (occlusion). Band sizes that do and do not
  // divide the height.
  const int H = 48, W = 40;
  torch::manual_seed(3);
  auto grid = [](int rows, int cols, double step, double angle, double jitter, double x0, double y0, double z0) {
    auto t = Grid(rows, cols);
    auto c = t.pixel_of_vertex.remainder(cols).to(torch::kDouble), r = t.pixel_of_vertex.div(cols, "floor").to(torch::kDouble);
    auto u = c * step + jitter * torch::randn(c.sizes(), torch::kDouble), w = r * step + jitter * torch::randn(r.sizes(), torch::kDouble);
    auto x = x0 + std::cos(angle) * u - std::sin(angle) * w, y = y0 + std::sin(angle) * u + std::cos(angle) * w;
    auto z = z0 + 0.8 * torch::cos(0.7 * c) * torch::sin(0.9 * r) + 0.05 * c;
    return std::make_tuple(t.triangles, torch::stack({x, y}, 1).to(torch::kFloat), z.to(torch::kFloat));
  };
  auto [t1, s1, z1] = grid(30, 26, 1.0, 0.0, 0.0, 4, 6, 10);
  auto [t2, s2, z2] = grid(70, 60, 0.43, 0.35, 0.08, 12, -2, 10);
  auto [t3, s3, z3] = grid(20, 24, 0.77, -0.2, 0.1, 2, 20, 0);
  const std::vector<std::tuple<at::Tensor, at::Tensor, at::Tensor>> meshes = {
      {t1, s1, z1}, {t2, s2, z2}, {torch::cat({t2, t3 + s2.size(0)}), torch::cat({s2, s3}), torch::cat({z2, z3})}};
  for (size_t m = 0; m < meshes.size(); ++m) {
    const auto& [tri, screen, depth] = meshes[m];
    auto ref = BruteForce(screen, depth, tri, H, W);
    for (int band_rows : {32, 7, 1}) {
      RasterOptions options{H, W, band_rows, 0.5};
      // The same mesh twice in one batch (images are independent).
      auto out = Rasterise(torch::stack({screen, screen}).contiguous(), torch::stack({depth, depth}).contiguous(),
                           tri.contiguous(), options);
      auto zb = torch::from_blob(ref.z.data(), {H, W}, torch::kFloat);
      for (int b = 0; b < 2; ++b) {
        EXPECT_TRUE(out.triangle_id[b].equal(torch::from_blob(ref.ids.data(), {H, W}, torch::kLong)))
            << "mesh " << m << ", band rows " << band_rows << ": "
            << out.triangle_id[b].ne(torch::from_blob(ref.ids.data(), {H, W}, torch::kLong)).sum().item<int64_t>()
            << " pixels differ";
        auto covered = torch::isfinite(zb);
        EXPECT_TRUE(torch::isfinite(out.zbuffer[b]).equal(covered));
        EXPECT_LT((out.zbuffer[b] - zb).masked_select(covered).abs().max().item<float>(), 1e-4);
      }
      // Visibility: inside the image and within the tolerance of a finite depth at
      // one of the up-to-4 nearest pixel centres.
      auto s = screen.accessor<float, 2>();
      auto d = depth.accessor<float, 1>();
      auto vis = out.visibility[1];
      int64_t visible = 0;
      for (int64_t i = 0; i < screen.size(0); ++i) {
        const float x = s[i][0], y = s[i][1];
        bool expected = false;
        if (x >= -0.5f && x <= W - 0.5f && y >= -0.5f && y <= H - 0.5f)
          for (int py = static_cast<int>(std::floor(y)); py <= static_cast<int>(std::floor(y)) + 1; ++py)
            for (int px = static_cast<int>(std::floor(x)); px <= static_cast<int>(std::floor(x)) + 1; ++px)
              if (px >= 0 && px < W && py >= 0 && py < H && std::isfinite(ref.z[py * W + px]) &&
                  d[i] <= ref.z[py * W + px] + 0.5f)
                expected = true;
        EXPECT_EQ(vis[i].item<bool>(), expected) << "mesh " << m << ", vertex " << i;
        visible += expected;
      }
      if (m == 2) EXPECT_LT(visible, screen.size(0) - 100);  // the front sheet hides part of the back one
    }
  }
}

TEST(Render, ZeroAreaTriangleGivesNoNaN) {
  auto tri = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong).view({2, 3});
  auto S = torch::tensor({0.0, 0.0, 0.0, 4.0, 4.0, 0.0, 8.0, 8.0, 0.0,  // collinear
                          0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0, -8.0, 0.0},
                         torch::kDouble).view({1, 6, 3}).requires_grad_(true);
  auto A = torch::ones({1, 6, 3}, torch::kDouble);
  auto L = SimpleLighting(1, 1.0, 0.0, 0, 0, 1).to(torch::kDouble);
  auto r = RenderMesh(tri, S, A, FrontalM(1, 2, 2, 1, at::kDouble), L, 16, 16);
  EXPECT_GT(r.mask.sum().item<double>(), 10);
  EXPECT_TRUE((r.triangle_id != 0).all().item<bool>());
  r.image.sum().backward();
  EXPECT_TRUE(torch::isfinite(S.grad()).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(r.image).all().item<bool>());
}

TEST(Render, EmptyBatchAndOutsideImage) {
  auto topo = Grid(4, 4);
  auto S = GridVertices(topo, 1.0, 0.0, at::kFloat);
  auto L = SimpleLighting(1, 1.0, 0.5, 0, 0, 1);
  auto r0 = RenderMesh(topo.triangles, S.slice(0, 0, 0), S.slice(0, 0, 0), FrontalM(1, 0, 0, 0),
                       L.slice(0, 0, 0), 20, 24);
  EXPECT_EQ(r0.image.sizes(), (std::vector<int64_t>{0, 3, 20, 24}));
  auto r = RenderMesh(topo.triangles, S, torch::ones_like(S), FrontalM(2, 500, -300), L, 20, 24);
  EXPECT_EQ(r.mask.sum().item<float>(), 0);
  EXPECT_EQ(r.image.abs().sum().item<float>(), 0);
  EXPECT_FALSE(r.visibility.any().item<bool>());
}

TEST(Render, EntryChecksNameTheArgument) {
  auto topo = Grid(3, 3);
  auto S = GridVertices(topo, 1.0, 0.0, at::kFloat);
  auto L = SimpleLighting(1, 1.0, 0.0, 0, 0, 1);
  auto expect_msg = [](auto&& fn, const std::string& word) {
    try {
      fn();
      FAIL() << "no error for " << word;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_msg([&] { RenderMesh(topo.triangles, S, S, FrontalM(1, 0, 0), torch::zeros({1, 9})); }, "L must");
  expect_msg([&] { RenderMesh(topo.triangles, S, S.to(torch::kDouble), FrontalM(1, 0, 0), L); }, "albedo_vertices");
  expect_msg([&] { RenderMesh(topo.triangles, S, S, torch::zeros({1, 3, 4}), L); }, "M must");
  expect_msg([&] { RenderMesh(topo.triangles, S.squeeze(0), S, FrontalM(1, 0, 0), L); }, "shape_vertices");
  expect_msg([&] { Render(Grid(4, 4), S, S, FrontalM(1, 0, 0), L); }, "topology");
}

TEST(Render, PlaneDepth) {
  auto topo = Grid(8, 8);
  auto S = GridVertices(topo, 1.0, 0.0, at::kDouble);
  // Z = 0.3 X - 0.2 Y + 1 (overwrite the grid's z).
  auto X = S.select(2, 0), Y = S.select(2, 1);
  S = torch::stack({X, Y, 0.3 * X - 0.2 * Y + 1.0}, 2);
  const double s = 3.0, tx = 16.0, ty = 15.0;
  auto L = SimpleLighting(1, 1.0, 0.0, 0, 0, 1).to(torch::kDouble);
  auto r = RenderMesh(topo.triangles, S, torch::ones_like(S), FrontalM(s, tx, ty, 1, at::kDouble), L, 32, 32);
  auto mask = r.mask[0][0] > 0;
  ASSERT_GT(mask.sum().item<int64_t>(), 300);
  auto ys = torch::arange(32, torch::kDouble).view({32, 1}).expand({32, 32});
  auto xs = torch::arange(32, torch::kDouble).view({1, 32}).expand({32, 32});
  auto Xp = (xs - tx) / s, Yp = -(ys - ty) / s;
  auto expected = -s * (0.3 * Xp - 0.2 * Yp + 1.0);  // depth grows away from the camera
  auto err = (r.depth[0][0] - expected).abs().masked_select(mask);
  EXPECT_LT(err.max().item<double>(), 1e-6);
  // Uniform white ambient light: image = albedo = 1 where covered.
  EXPECT_NEAR(r.image.masked_select(mask.unsqueeze(0).expand({3, 32, 32}).unsqueeze(0)).mean().item<double>(), 1.0, 1e-5);
  // Every vertex of the plane is visible (all face the camera, inside the image).
  EXPECT_TRUE(r.visibility.all().item<bool>());
}

// UV sphere of radius 1, triangles wound so normals point outwards.
std::pair<at::Tensor, at::Tensor> Sphere(int lat, int lon) {
  std::vector<double> v;
  std::vector<int64_t> f;
  v.insert(v.end(), {0, 1, 0});
  for (int i = 1; i < lat; ++i)
    for (int j = 0; j < lon; ++j) {
      const double th = kPi * i / lat, ph = 2 * kPi * j / lon;
      v.insert(v.end(), {std::sin(th) * std::cos(ph), std::cos(th), std::sin(th) * std::sin(ph)});
    }
  v.insert(v.end(), {0, -1, 0});
  const int64_t bottom = 1 + (lat - 1) * lon;
  auto id = [&](int i, int j) { return 1 + (i - 1) * lon + (j % lon); };
  for (int j = 0; j < lon; ++j) {
    f.insert(f.end(), {0, id(1, j + 1), id(1, j)});
    f.insert(f.end(), {bottom, id(lat - 1, j), id(lat - 1, j + 1)});
    for (int i = 1; i + 1 < lat; ++i) {
      f.insert(f.end(), {id(i, j), id(i, j + 1), id(i + 1, j)});
      f.insert(f.end(), {id(i, j + 1), id(i + 1, j + 1), id(i + 1, j)});
    }
  }
  auto V = torch::tensor(v, torch::kDouble).view({-1, 3});
  auto F = torch::tensor(f, torch::kLong).view({-1, 3});
  // Orient outwards (check with the face normal vs. the centroid direction).
  auto a = V.index_select(0, F.select(1, 0)), b = V.index_select(0, F.select(1, 1)), c = V.index_select(0, F.select(1, 2));
  auto out = (torch::cross(b - a, c - a, 1) * (a + b + c)).sum(1) < 0;
  auto Ff = F.clone();
  Ff.select(1, 1).copy_(torch::where(out, F.select(1, 2), F.select(1, 1)));
  Ff.select(1, 2).copy_(torch::where(out, F.select(1, 1), F.select(1, 2)));
  return {V.unsqueeze(0), Ff};
}

TEST(Render, SphereUnderKnownSHEnvironment) {
  auto [V, F] = Sphere(48, 96);
  torch::manual_seed(3);
  auto L = torch::randn({1, 27}, torch::kDouble) * 0.3;
  L.select(1, 0).fill_(3.0), L.select(1, 9).fill_(2.5), L.select(1, 18).fill_(2.0);
  const double s = 24.0, c = 32.0;
  auto r = RenderMesh(F, V, torch::ones_like(V), FrontalM(s, c, c, 1, at::kDouble), L, 64, 64);
  // Expected: view-frame normal at pixel (x, y) of a sphere: ((x-c)/s, -(y-c)/s, sqrt(1 - ...)).
  auto ys = torch::arange(64, torch::kDouble).view({64, 1}).expand({64, 64});
  auto xs = torch::arange(64, torch::kDouble).view({1, 64}).expand({64, 64});
  auto nx = (xs - c) / s, ny = -(ys - c) / s;
  auto rho2 = nx * nx + ny * ny;
  auto inner = rho2 < 0.7;
  auto n = torch::stack({nx, ny, (1 - rho2).clamp_min(0).sqrt()}, 2).view({1, -1, 3});
  auto expected = SHShading(n, L).view({64, 64, 3}).permute({2, 0, 1});
  auto got = r.image[0];
  auto sel = inner.unsqueeze(0).expand({3, 64, 64});
  auto err = (got - expected).abs().masked_select(sel);
  EXPECT_LT(err.max().item<double>(), 0.03 * expected.abs().max().item<double>());
  // Silhouette: coverage ~ pi s^2.
  EXPECT_NEAR(r.mask.sum().item<double>(), kPi * s * s, 0.03 * kPi * s * s);
  // Back hemisphere is invisible, front visible.
  auto z = V[0].select(1, 2);
  EXPECT_FALSE(r.visibility[0].masked_select(z < -0.2).any().item<bool>());
  EXPECT_TRUE(r.visibility[0].masked_select(z > 0.2).all().item<bool>());
}

TEST(Render, OcclusionOrderOfOverlappingMeshes) {
  // Two squares: A at z = 0 (x in [-4, 4]), B at z = 2 (towards the camera, x in [0, 8]).
  auto square = [](double x0, double z) {
    return std::vector<double>{x0, 4, z, x0 + 8, 4, z, x0 + 8, -4, z, x0, -4, z};
  };
  auto va = square(-4, 0), vb = square(0, 2);
  for (int order = 0; order < 2; ++order) {
    std::vector<double> v = order == 0 ? va : vb;
    const auto& second = order == 0 ? vb : va;
    v.insert(v.end(), second.begin(), second.end());
    auto V = torch::tensor(v, torch::kDouble).view({1, 8, 3});
    auto F = torch::tensor({0, 3, 2, 0, 2, 1, 4, 7, 6, 4, 6, 5}, torch::kLong).view({4, 3});
    auto r = RenderMesh(F, V, torch::ones_like(V), FrontalM(2, 16, 16, 1, at::kDouble),
                        SimpleLighting(1, 1, 0, 0, 0, 1).to(torch::kDouble), 32, 32);
    const int64_t front_first = order == 0 ? 2 : 0;  // triangle ids of B
    // Pixel (16, 20): x = 2 in model units -> inside both squares -> B (front) wins.
    const int64_t id = r.triangle_id[0][16][20].item<int64_t>();
    EXPECT_TRUE(id == front_first || id == front_first + 1) << order;
    EXPECT_NEAR(r.depth[0][0][16][20].item<double>(), -4.0, 1e-9);
    // Pixel (16, 10): x = -3, only A.
    const int64_t id2 = r.triangle_id[0][16][10].item<int64_t>();
    EXPECT_TRUE(id2 == 2 - front_first || id2 == 3 - front_first) << order;
    // A's vertex at (4, 4, 0) is behind B; A's (-4, 4, 0) is visible.
    const int64_t a0 = order == 0 ? 0 : 4;
    EXPECT_TRUE(r.visibility[0][a0].item<bool>());
    EXPECT_FALSE(r.visibility[0][a0 + 1].item<bool>());
  }
}

// Finite differences of loss = sum(w * image) (double, small bumpy grid).
TEST(Render, GradientsMatchFiniteDifferences) {
  torch::manual_seed(7);
  auto topo = Grid(6, 7);
  const int H = 28, W = 30;
  auto S = GridVertices(topo, 3.0, 1.0, at::kDouble);
  auto A = torch::rand({1, topo.num_vertices(), 3}, torch::kDouble) * 0.5 + 0.25;
  auto R = RotationFromPoseAngles(torch::tensor({0.2}, torch::kDouble), torch::tensor({-0.3}, torch::kDouble),
                                  torch::tensor({0.1}, torch::kDouble));
  auto M = ComposeM(torch::tensor({1.1}, torch::kDouble), R, torch::tensor({{15.2, 13.7}}, torch::kDouble));
  auto L = torch::randn({1, 27}, torch::kDouble) * 0.2;
  L.select(1, 0).fill_(2.5), L.select(1, 9).fill_(2.2), L.select(1, 18).fill_(2.0);
  auto weights = torch::rand({1, 3, H, W}, torch::kDouble);
  auto loss_fn = [&](const at::Tensor& s, const at::Tensor& a, const at::Tensor& m, const at::Tensor& l) {
    auto r = RenderMesh(topo.triangles, s, a, m, l, H, W);
    return (r.image * weights).sum() + 0.01 * (r.depth * weights.slice(1, 0, 1)).sum();
  };
  std::vector<at::Tensor> params = {S.clone(), A.clone(), M.clone(), L.clone()};
  for (auto& p : params) p.requires_grad_(true);
  auto loss = loss_fn(params[0], params[1], params[2], params[3]);
  ASSERT_GT(loss.item<double>(), 1.0);
  loss.backward();
  const char* names[] = {"vertices", "albedo", "M", "L"};
  for (int k = 0; k < 4; ++k) {
    auto base = params[k].detach();
    auto grad = params[k].grad();
    ASSERT_TRUE(grad.defined()) << names[k];
    auto flat = base.reshape({-1});
    const int64_t n = flat.numel();
    auto picks = torch::randperm(n).slice(0, 0, std::min<int64_t>(n, 25));
    double max_err = 0, max_grad = 0;
    for (int64_t i = 0; i < picks.numel(); ++i) {
      const int64_t j = picks[i].item<int64_t>();
      const double h = 1e-6;
      auto plus = flat.clone(), minus = flat.clone();
      plus[j] += h;
      minus[j] -= h;
      std::vector<at::Tensor> pp = {S, A, M, L}, pm = {S, A, M, L};
      pp[k] = plus.view(base.sizes());
      pm[k] = minus.view(base.sizes());
      const double fd = (loss_fn(pp[0], pp[1], pp[2], pp[3]).item<double>() -
                         loss_fn(pm[0], pm[1], pm[2], pm[3]).item<double>()) / (2 * h);
      const double an = grad.reshape({-1})[j].item<double>();
      max_err = std::max(max_err, std::abs(fd - an) / (1e-3 + std::abs(an)));
      max_grad = std::max(max_grad, std::abs(an));
    }
    EXPECT_LT(max_err, 1e-4) << names[k];
    EXPECT_GT(max_grad, 1e-3) << names[k] << " gradient is (nearly) zero";
  }
}

TEST(Render, FusedCpuInterpolationMatchesTorchOps) {
  torch::manual_seed(11);
  auto topo = Grid(7, 6);
  auto S = GridVertices(topo, 2.5, 1.0, at::kDouble);
  auto M = FrontalM(1.3, 12.3, 11.1, 1, at::kDouble);
  auto screen = ProjectVertices(M, S);
  auto raster = Rasterise(screen.to(at::kFloat).contiguous(), VertexDepth(M, S).to(at::kFloat).contiguous(),
                          topo.triangles, {24, 26});
  auto attr = torch::rand({1, topo.num_vertices(), 4}, torch::kDouble);
  auto weights = torch::rand({1, 4, 24, 26}, torch::kDouble);
  std::vector<at::Tensor> grads[2];
  at::Tensor values[2];
  for (int k = 0; k < 2; ++k) {
    auto s = screen.clone().requires_grad_(true), a = attr.clone().requires_grad_(true);
    auto out = k == 0 ? InterpolateAttributes(topo.triangles, raster.triangle_id, s, a)
                      : InterpolateAttributesTorch(topo.triangles, raster.triangle_id, s, a);
    (out * weights).sum().backward();
    values[k] = out.detach();
    grads[k] = {s.grad(), a.grad()};
  }
  EXPECT_GT(values[0].abs().sum().item<double>(), 10.0);
  EXPECT_TRUE(torch::allclose(values[0], values[1], 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(grads[0][0], grads[1][0], 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(grads[0][1], grads[1][1], 1e-12, 1e-12));
  EXPECT_GT(grads[0][0].abs().sum().item<double>(), 1e-3);
}

TEST(Lighting, FusedCpuShadingMatchesTorchOps) {
  torch::manual_seed(12);
  auto n = torch::randn({2, 50, 3}, torch::kDouble);
  n = n / n.norm(2, 2, true);
  auto L = torch::randn({2, 27}, torch::kDouble);
  auto w = torch::rand({2, 50, 3}, torch::kDouble);
  std::vector<at::Tensor> out(2), gn(2), gL(2);
  for (int k = 0; k < 2; ++k) {
    auto nn = n.clone().requires_grad_(true), LL = L.clone().requires_grad_(true);
    auto s = k == 0 ? SHShading(nn, LL) : SHShadingTorch(nn, LL);
    (s * w).sum().backward();
    out[k] = s.detach(), gn[k] = nn.grad(), gL[k] = LL.grad();
  }
  EXPECT_TRUE(torch::allclose(out[0], out[1], 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(gn[0], gn[1], 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(gL[0], gL[1], 1e-12, 1e-12));
}

TEST(Projection, ComposeDecomposeRoundTrip) {
  torch::manual_seed(1);
  auto angles = (torch::rand({5, 3}, torch::kDouble) - 0.5) * 2.0;
  auto R = RotationFromPoseAngles(angles.select(1, 0), angles.select(1, 1), angles.select(1, 2));
  // Orthonormal with det +1.
  EXPECT_TRUE(torch::allclose(torch::matmul(R, R.transpose(1, 2)), torch::eye(3, torch::kDouble).expand({5, 3, 3}), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(torch::linalg_det(R), torch::ones({5}, torch::kDouble)));
  EXPECT_TRUE(torch::allclose(PoseAnglesFromRotation(R), angles, 1e-9, 1e-9));
  auto s = torch::rand({5}, torch::kDouble) + 0.5;
  auto t = torch::rand({5, 2}, torch::kDouble) * 100;
  auto M = ComposeM(s, R, t);
  auto wp = DecomposeM(M);
  EXPECT_TRUE(torch::allclose(wp.scale, s, 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(wp.rotation, R, 1e-9, 1e-9));
  EXPECT_TRUE(torch::allclose(wp.translation, t));
  EXPECT_TRUE(torch::allclose(ViewRotation(M), R, 1e-9, 1e-9));
  // Projection and depth.
  auto X = torch::randn({5, 10, 3}, torch::kDouble);
  auto view = torch::matmul(X, R.transpose(1, 2));  // view-frame coordinates
  auto p = ProjectVertices(M, X);
  EXPECT_TRUE(torch::allclose(p.select(2, 0), s.unsqueeze(1) * view.select(2, 0) + t.select(1, 0).unsqueeze(1)));
  EXPECT_TRUE(torch::allclose(p.select(2, 1), -s.unsqueeze(1) * view.select(2, 1) + t.select(1, 1).unsqueeze(1)));
  EXPECT_TRUE(torch::allclose(VertexDepth(M, X), -s.unsqueeze(1) * view.select(2, 2), 1e-9, 1e-9));
  // A general (non-clean) M decomposes into the nearest clean one: recompose is close.
  auto noisy = M + 0.001 * torch::randn_like(M) * s.view({5, 1, 1});
  auto wp2 = DecomposeM(noisy);
  EXPECT_TRUE(torch::allclose(ComposeM(wp2.scale, wp2.rotation, wp2.translation), noisy, 0, 0.01));
}

TEST(Projection, PoseParaRoundTripAndConvention) {
  // Yaw +30 degrees: the nose (model +z) moves to image left.
  auto pose = torch::tensor({{0.1, 0.5236, -0.2, 100.0, 120.0, 0.0, 0.0015}}, torch::kDouble);
  const double height = 450;
  auto M = PoseParaToM(pose, height);
  auto back = MToPosePara(M, height);
  auto expect = pose.clone();
  expect[0][5] = 0.0;
  EXPECT_TRUE(torch::allclose(back, expect, 1e-9, 1e-9));
  // 3DDFA formula by hand for one point (MATLAB 1-based -> our 0-based).
  auto X = torch::tensor({{{1000.0, -2000.0, 5000.0}}}, torch::kDouble);
  auto R = RotationFromPoseAngles(pose.select(1, 0), pose.select(1, 1), pose.select(1, 2))[0];
  auto pc = 0.0015 * torch::matmul(R, X[0][0]);
  auto p = ProjectVertices(M, X)[0][0];
  EXPECT_NEAR(p[0].item<double>(), pc[0].item<double>() + 100.0 - 1.0, 1e-9);
  EXPECT_NEAR(p[1].item<double>(), height + 1 - (pc[1].item<double>() + 120.0) - 1.0, 1e-9);
  auto yaw_only = PoseParaToM(torch::tensor({{0.0, 0.5236, 0.0, 0.0, 0.0, 0.0, 1.0}}, torch::kDouble), height);
  auto nose = ProjectVertices(yaw_only, torch::tensor({{{0.0, 0.0, 1.0}}}, torch::kDouble))[0][0];
  EXPECT_LT(nose[0].item<double>(), -1.0 + -0.4);
  // face3d variant differs by one pixel in x and y.
  auto M2 = PoseParaToM(pose, height, 1.0, false);
  EXPECT_NEAR((M2 - M)[0][0][3].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR((M2 - M)[0][1][3].item<double>(), -1.0, 1e-12);
  // Model units: M for our cm template with X_bfm = 1e4 X_cm projects the same.
  auto Mcm = PoseParaToM(pose, height, 1e4);
  EXPECT_TRUE(torch::allclose(ProjectVertices(Mcm, X / 1e4), ProjectVertices(M, X)));
}

TEST(Lighting, SHBasisConstantsAndSimpleLight) {
  auto n = torch::tensor({{{0.0, 0.0, 1.0}, {1.0, 0.0, 0.0}}}, torch::kDouble);
  auto Y = SHBasis(n);
  EXPECT_NEAR(Y[0][0][0].item<double>(), 0.282095, 1e-9);
  EXPECT_NEAR(Y[0][0][2].item<double>(), 0.488603, 1e-9);
  EXPECT_NEAR(Y[0][0][6].item<double>(), 0.630784, 1e-6);
  EXPECT_NEAR(Y[0][1][8].item<double>(), 0.546274, 1e-9);
  auto L = SimpleLighting(1, 0.4, 0.6, 0, 0, 1, 1.0, 0.5, 0.25).to(torch::kDouble);
  auto sh = SHShading(n, L);
  EXPECT_NEAR(sh[0][0][0].item<double>(), 1.0, 1e-6);   // facing the light
  EXPECT_NEAR(sh[0][1][0].item<double>(), 0.4, 1e-6);   // perpendicular: ambient only
  EXPECT_NEAR(sh[0][0][1].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(sh[0][0][2].item<double>(), 0.25, 1e-6);
}

TEST(Render, TemplateFrontalIsSymmetricAndUnwrapsBack) {
  const auto t = DefaultTemplate(64, 72);
  auto S = VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0));
  auto A = VerticesFromUVMap(t.topology, t.mean_albedo.unsqueeze(0));
  auto L = SimpleLighting(1, 0.6, 0.5, 0, 0, 1);
  auto M = FrontalM(96.0 / 16.0, 47.5, 47.5);  // image 96 x 96, symmetric about x = 47.5
  auto r = Render(t.topology, S, A, M, L, 96, 96);
  const double cover = r.mask.mean().item<double>();
  EXPECT_GT(cover, 0.4);
  EXPECT_LT(cover, 0.9);
  // Frontal face under a frontal light: left-right symmetric image.
  auto diff = (r.image - r.image.flip({3})).abs();
  EXPECT_LT(diff.mean().item<double>(), 0.01);
  // Nose tip is the nearest point.
  const int64_t nose = t.topology.landmarks68[30].item<int64_t>();
  auto depth = VertexDepth(M, S)[0];
  EXPECT_LT(depth[nose].item<float>(), depth.quantile(0.01).item<float>() + 1e-3);
  // Unwrapping the render gives back the vertex colours where visible.
  auto u = UnwrapTexture(t.topology, r.image, S, M);
  auto vis = u.visibility[0];
  EXPECT_GT(vis.to(torch::kFloat).mean().item<float>(), 0.8);
  auto err = (u.vertex_color[0] - r.vertex_color[0].detach()).abs().sum(1).masked_select(vis);
  EXPECT_LT(err.mean().item<float>(), 0.05);  // bilinear resampling blur at brows and lips
  EXPECT_EQ(u.uv_color.sizes(), (std::vector<int64_t>{1, 3, 64, 72}));
  EXPECT_EQ(u.uv_visibility.sizes(), (std::vector<int64_t>{1, 1, 64, 72}));
}

TEST(Render, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto t = DefaultTemplate(48, 56);
  auto S = VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0));
  auto A = VerticesFromUVMap(t.topology, t.mean_albedo.unsqueeze(0));
  auto L = SimpleLighting(1, 0.6, 0.5, 0.3, 0.2, 1);
  auto M = FrontalM(4.0, 32, 32);
  auto cpu = Render(t.topology, S, A, M, L, 64, 64);
  auto gpu = Render(t.topology, S.cuda(), A.cuda(), M.cuda(), L.cuda(), 64, 64);
  EXPECT_TRUE(gpu.image.is_cuda());
  EXPECT_TRUE(torch::allclose(gpu.image.cpu(), cpu.image, 1e-4, 1e-4));
  EXPECT_TRUE(gpu.triangle_id.cpu().equal(cpu.triangle_id));
}

}  // namespace
}  // namespace facebatch::render
