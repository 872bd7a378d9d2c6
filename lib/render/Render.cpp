// Differentiable rendering on top of the rasteriser (see Render.h).
#include "render/Render.h"
#include "render/TensorText.h"

#include <torch/torch.h>

#include <sstream>

#include "core/Error.h"
#include "render/Kernels.h"
#include "render/Lighting.h"
#include "render/Projection.h"

namespace facebatch::render {

namespace {


void Require(bool ok, const char* where, const std::string& what) {
  if (!ok) throw Error(std::string(where) + ": " + what);
}

void CheckFloat(const at::Tensor& t, const char* where, const char* name, const at::Tensor& ref) {
  Require(t.defined(), where, std::string(name) + " is undefined");
  Require(t.is_floating_point(), where, std::string(name) + " must be floating point");
  Require(t.scalar_type() == ref.scalar_type(), where,
          std::string(name) + " must have the dtype of shape_vertices (" + std::string(c10::toString(ref.scalar_type())) + ")");
  Require(t.device() == ref.device(), where, std::string(name) + " must be on the device of shape_vertices (" + ref.device().str() + ")");
}

void CheckTriangles(const at::Tensor& tri, const char* where) {
  Require(tri.defined() && tri.dim() == 2 && tri.size(1) == 3 && tri.scalar_type() == at::kLong, where,
          "triangles must be int64 [F, 3]");
}

void CheckInputs(const char* where, const at::Tensor& tri, const at::Tensor& S, const at::Tensor& A,
                 const at::Tensor& M, const at::Tensor& L) {
  CheckTriangles(tri, where);
  Require(S.defined() && S.dim() == 3 && S.size(2) == 3, where,
          "shape_vertices must be [B, N, 3] (got " + ShapeString(S) + ")");
  CheckFloat(S, where, "shape_vertices", S);
  CheckFloat(A, where, "albedo_vertices", S);
  Require(A.sizes() == S.sizes(), where, "albedo_vertices must be " + ShapeString(S) + " (got " + ShapeString(A) + ")");
  CheckFloat(M, where, "M", S);
  Require(M.dim() == 3 && M.size(0) == S.size(0) && M.size(1) == 2 && M.size(2) == 4, where,
          "M must be [B, 2, 4] (got " + ShapeString(M) + ")");
  CheckFloat(L, where, "L", S);
  Require(L.dim() == 2 && L.size(0) == S.size(0) && L.size(1) == 27, where, "L must be [B, 27] (got " + ShapeString(L) + ")");
}

// Area-weighted normals for an arbitrary triangle list (Topology.h's VertexNormals uses this too).
at::Tensor MeshNormals(const at::Tensor& tri, const at::Tensor& V) {
  auto n = kernels::VertexNormalSum(V, tri);
  return n / (n * n).sum(2, true).clamp_min(1e-20).sqrt();
}

}  // namespace

at::Tensor InterpolateAttributes(const at::Tensor& triangles, const at::Tensor& triangle_id, const at::Tensor& screen,
                                 const at::Tensor& attributes) {
  const char* where = "render::InterpolateAttributes";
  CheckTriangles(triangles, where);
  Require(triangle_id.defined() && triangle_id.dim() == 3 && triangle_id.scalar_type() == at::kLong, where,
          "triangle_id must be int64 [B, H, W]");
  Require(screen.dim() == 3 && screen.size(2) == 2 && screen.size(0) == triangle_id.size(0), where,
          "screen must be [B, N, 2]");
  Require(attributes.dim() == 3 && attributes.size(0) == screen.size(0) && attributes.size(1) == screen.size(1), where,
          "attributes must be [B, N, C] with the B, N of screen");
  if (auto fused = kernels::InterpolateCPU(triangles, triangle_id, screen, attributes); fused.defined())
    return fused;
  return InterpolateAttributesTorch(triangles, triangle_id, screen, attributes);
}

at::Tensor InterpolateAttributesTorch(const at::Tensor& triangles, const at::Tensor& triangle_id,
                                      const at::Tensor& screen, const at::Tensor& attributes) {
  const int64_t B = triangle_id.size(0), H = triangle_id.size(1), W = triangle_id.size(2);
  const int64_t N = screen.size(1), C = attributes.size(2);
  const auto dev = attributes.device();
  auto ids = triangle_id.to(dev).reshape({-1});
  auto pix = torch::nonzero(ids >= 0).squeeze(1);  // [P] flat pixel index over B*H*W
  at::Tensor out;
  if (pix.numel() == 0) {
    // Keep the graph connected (zero gradients) for an empty coverage.
    out = attributes.sum() * 0 + torch::zeros({B * H * W, C}, attributes.options());
    return out.view({B, H, W, C}).permute({0, 3, 1, 2});
  }
  auto tri = triangles.to(dev);
  auto b = pix.div(H * W, "floor");
  auto vid = kernels::TakeRows(tri, ids.index_select(0, pix)) + (b * N).unsqueeze(1);  // [P, 3] global vertex ids
  auto flat_ids = vid.reshape({-1});
  auto p = kernels::GatherRows(screen.reshape({B * N, 2}).to(attributes.scalar_type()), flat_ids).view({-1, 3, 2});
  auto x = pix.remainder(W).to(p.scalar_type());
  auto y = pix.div(W, "floor").remainder(H).to(p.scalar_type());
  auto px = p.select(2, 0), py = p.select(2, 1);  // [P, 3]
  auto x0 = px.select(1, 0), x1 = px.select(1, 1), x2 = px.select(1, 2);
  auto y0 = py.select(1, 0), y1 = py.select(1, 1), y2 = py.select(1, 2);
  auto area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
  // Guard (never hit for triangles the rasteriser drew, which have non-zero area).
  area = torch::where(area.abs() < 1e-12, torch::full_like(area, 1e-12), area);
  auto inv = 1.0 / area;
  auto w0 = ((x1 - x) * (y2 - y) - (y1 - y) * (x2 - x)) * inv;
  auto w1 = ((x2 - x) * (y0 - y) - (y2 - y) * (x0 - x)) * inv;
  auto w2 = 1 - w0 - w1;
  auto a = kernels::GatherRows(attributes.reshape({B * N, C}), flat_ids).view({-1, 3, C});
  auto w = torch::stack({w0, w1, w2}, 1).unsqueeze(2);  // [P, 3, 1]
  auto val = (a * w).sum(1);                            // [P, C]
  out = kernels::PutRows(val, pix, B * H * W);
  return out.view({B, H, W, C}).permute({0, 3, 1, 2});
}

RenderResult RenderMesh(const at::Tensor& triangles, const at::Tensor& S, const at::Tensor& A, const at::Tensor& M,
                        const at::Tensor& L, int height, int width, const RasterOptions& raster_in) {
  const char* where = "render::Render";
  CheckInputs(where, triangles, S, A, M, L);
  Require(height > 0 && width > 0, where, "height and width must be positive");
  const auto dev = S.device();
  auto tri = triangles.to(dev).contiguous();
  RenderResult r;
  r.screen = ProjectVertices(M, S);
  auto depth = VertexDepth(M, S);
  RasterOptions ro = raster_in;
  ro.height = height;
  ro.width = width;
  auto raster = Rasterise(r.screen.detach().to(at::kFloat).contiguous(), depth.detach().to(at::kFloat).contiguous(),
                          tri, ro);
  r.triangle_id = raster.triangle_id;
  r.visibility = raster.visibility;
  auto R = ViewRotation(M);  // [B, 3, 3]
  auto n = MeshNormals(tri, S);
  r.normals = torch::matmul(n, R.transpose(1, 2));
  r.vertex_color = A * SHShading(r.normals, L);
  // One interpolation for colour and depth.
  auto attrs = torch::cat({r.vertex_color, depth.unsqueeze(2)}, 2);
  auto img = InterpolateAttributes(tri, r.triangle_id, r.screen, attrs);
  r.image = img.slice(1, 0, 3);
  r.depth = img.slice(1, 3, 4);
  r.mask = (r.triangle_id >= 0).unsqueeze(1).to(S.scalar_type());
  return r;
}

RenderResult Render(const FaceTopology& topology, const at::Tensor& S, const at::Tensor& A, const at::Tensor& M,
                    const at::Tensor& L, int height, int width) {
  Require(S.defined() && S.dim() == 3 && S.size(1) == topology.num_vertices(), "render::Render",
          "shape_vertices must be [B, " + std::to_string(topology.num_vertices()) + ", 3] for this topology");
  return RenderMesh(topology.triangles, S, A, M, L, height, width);
}

UnwrapResult UnwrapTextureMesh(const at::Tensor& triangles, const at::Tensor& image, const at::Tensor& S,
                               const at::Tensor& M) {
  const char* where = "render::UnwrapTexture";
  CheckTriangles(triangles, where);
  Require(S.defined() && S.dim() == 3 && S.size(2) == 3, where, "shape_vertices must be [B, N, 3]");
  CheckFloat(image, where, "image", S);
  CheckFloat(M, where, "M", S);
  Require(image.dim() == 4 && image.size(0) == S.size(0), where, "image must be [B, C, H, W] (got " + ShapeString(image) + ")");
  Require(M.dim() == 3 && M.size(0) == S.size(0) && M.size(1) == 2 && M.size(2) == 4, where, "M must be [B, 2, 4]");
  const int64_t H = image.size(2), W = image.size(3);
  auto tri = triangles.to(S.device()).contiguous();
  auto screen = ProjectVertices(M, S);
  auto depth = VertexDepth(M, S);
  RasterOptions ro;
  ro.height = static_cast<int>(H);
  ro.width = static_cast<int>(W);
  auto raster = Rasterise(screen.detach().to(at::kFloat).contiguous(), depth.detach().to(at::kFloat).contiguous(), tri, ro);
  // Pixel centres: x = j  <->  normalised -1 + 2 j / (W - 1) with align_corners = true.
  auto gx = screen.select(2, 0) * (2.0 / std::max<int64_t>(1, W - 1)) - 1;
  auto gy = screen.select(2, 1) * (2.0 / std::max<int64_t>(1, H - 1)) - 1;
  auto grid = torch::stack({gx, gy}, 2).unsqueeze(1);  // [B, 1, N, 2]
  auto sampled = torch::nn::functional::grid_sample(
      image, grid, torch::nn::functional::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(true));
  UnwrapResult u;
  u.vertex_color = sampled.squeeze(2).transpose(1, 2);  // [B, N, C]
  auto n = MeshNormals(tri, S.detach());
  auto facing = torch::matmul(n, ViewRotation(M.detach()).transpose(1, 2)).select(2, 2) > 0;
  u.visibility = raster.visibility.to(S.device()) & facing;
  return u;
}

UnwrapResult UnwrapTexture(const FaceTopology& topology, const at::Tensor& image, const at::Tensor& S,
                           const at::Tensor& M) {
  Require(S.defined() && S.dim() == 3 && S.size(1) == topology.num_vertices(), "render::UnwrapTexture",
          "shape_vertices must be [B, " + std::to_string(topology.num_vertices()) + ", 3] for this topology");
  auto u = UnwrapTextureMesh(topology.triangles, image, S, M);
  u.uv_color = UVMapFromVertices(topology, u.vertex_color);
  u.uv_visibility = UVMapFromVertices(topology, u.visibility.unsqueeze(2).to(image.scalar_type()));
  return u;
}

}  // namespace facebatch::render
