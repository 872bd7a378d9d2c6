// Face topology from the UV grid (paper section 3.1; DESIGN.md "Topology = the UV grid").
#include "render/Topology.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/Error.h"
#include "render/Kernels.h"

namespace facebatch::render {

const char* RegionName(int region) {
  switch (region) {
    case kLeftEye: return "left_eye";
    case kRightEye: return "right_eye";
    case kNose: return "nose";
    case kMouth: return "mouth";
    default: return "unknown";
  }
}

int64_t FaceTopology::num_vertices() const { return pixel_of_vertex.defined() ? pixel_of_vertex.size(0) : 0; }
int64_t FaceTopology::num_triangles() const { return triangles.defined() ? triangles.size(0) : 0; }

std::array<std::array<int, 6>, 2> EyeIndices68() {
  return {{{36, 37, 38, 39, 40, 41}, {42, 43, 44, 45, 46, 47}}};
}

namespace {

void CheckMask(const at::Tensor& mask) {
  if (!mask.defined() || mask.dim() != 2 || mask.scalar_type() != at::kBool)
    throw Error("render: mask must be a bool tensor [U, V]");
  if (mask.size(0) < 2 || mask.size(1) < 2) throw Error("render: mask must be at least 2 x 2");
}

void CheckLandmarks(const at::Tensor& lm) {
  if (!lm.defined() || lm.dim() != 2 || lm.size(0) != 68 || lm.size(1) != 2)
    throw Error("render: landmarks68_uv must be [68, 2] (row, col)");
}

// Rounds `size` up to a multiple of 8 when that fits in `limit`.
int RoundSize(double size, int limit) {
  int s = std::max(1, static_cast<int>(std::ceil(size)));
  int s8 = (s + 7) / 8 * 8;
  if (s8 <= limit) return s8;
  return std::min(s, limit);
}

int Clamp0(int start, int size, int limit) { return std::clamp(start, 0, std::max(0, limit - size)); }

}  // namespace

at::Tensor CleanMask(const at::Tensor& mask_in) {
  CheckMask(mask_in);
  auto mask = mask_in.to(at::kCPU).contiguous();
  const int64_t U = mask.size(0), V = mask.size(1);
  auto m = mask.accessor<bool, 2>();
  auto out = torch::zeros({U, V}, torch::kBool);
  auto o = out.accessor<bool, 2>();
  for (int64_t r = 0; r + 1 < U; ++r)
    for (int64_t c = 0; c + 1 < V; ++c)
      if (m[r][c] && m[r][c + 1] && m[r + 1][c] && m[r + 1][c + 1])
        o[r][c] = o[r][c + 1] = o[r + 1][c] = o[r + 1][c + 1] = true;
  return out;
}

std::array<UVBox, kNumRegions> RegionBoxes(const at::Tensor& landmarks68_uv, int U, int V) {
  CheckLandmarks(landmarks68_uv);
  auto lm = landmarks68_uv.to(at::kCPU, at::kDouble).contiguous();
  auto a = lm.accessor<double, 2>();
  auto bbox = [&](int first, int last, double& r0, double& r1, double& c0, double& c1) {
    r0 = c0 = std::numeric_limits<double>::max();
    r1 = c1 = std::numeric_limits<double>::lowest();
    for (int i = first; i <= last; ++i) {
      r0 = std::min(r0, a[i][0]); r1 = std::max(r1, a[i][0]);
      c0 = std::min(c0, a[i][1]); c1 = std::max(c1, a[i][1]);
    }
  };
  std::array<UVBox, kNumRegions> boxes{};
  double r0, r1, c0, c1;
  // Left eye (iBUG 36-41), mirrored to the right eye.
  bbox(36, 41, r0, r1, c0, c1);
  {
    UVBox b;
    b.cols = RoundSize(1.6 * (c1 - c0), V / 2);
    b.rows = RoundSize(0.75 * 1.6 * (c1 - c0), U);
    b.row0 = Clamp0(static_cast<int>(std::lround(0.5 * (r0 + r1) - 0.5 * b.rows + 0.5)), b.rows, U);
    b.col0 = Clamp0(static_cast<int>(std::lround(0.5 * (c0 + c1) - 0.5 * b.cols + 0.5)), b.cols, V / 2);
    boxes[kLeftEye] = b;
    UVBox m = b;
    m.col0 = V - b.col0 - b.cols;
    boxes[kRightEye] = m;
  }
  auto centred = [&](double rscale, double cscale) {
    UVBox b;
    b.cols = RoundSize(cscale * (c1 - c0), V);
    b.rows = RoundSize(rscale * (r1 - r0), U);
    b.row0 = Clamp0(static_cast<int>(std::lround(0.5 * (r0 + r1) - 0.5 * b.rows + 0.5)), b.rows, U);
    b.col0 = (V - b.cols) / 2;
    return b;
  };
  bbox(27, 35, r0, r1, c0, c1);
  boxes[kNose] = centred(1.15, 1.5);
  bbox(48, 59, r0, r1, c0, c1);
  boxes[kMouth] = centred(1.8, 1.4);
  return boxes;
}

FaceTopology BuildTopology(const at::Tensor& mask_in, const at::Tensor& landmarks68_uv) {
  CheckMask(mask_in);
  CheckLandmarks(landmarks68_uv);
  auto mask = mask_in.to(at::kCPU).contiguous();
  const int64_t U = mask.size(0), V = mask.size(1);
  auto m = mask.accessor<bool, 2>();
  FaceTopology t;
  t.uv_rows = static_cast<int>(U);
  t.uv_cols = static_cast<int>(V);
  t.mask = mask.clone();
  t.vertex_of_pixel = torch::full({U, V}, -1, torch::kLong);
  auto vop = t.vertex_of_pixel.accessor<int64_t, 2>();
  std::vector<int64_t> pixels;
  std::vector<float> uv;
  for (int64_t r = 0; r < U; ++r)
    for (int64_t c = 0; c < V; ++c)
      if (m[r][c]) {
        vop[r][c] = static_cast<int64_t>(pixels.size());
        pixels.push_back(r * V + c);
        uv.push_back(static_cast<float>((c + 0.5) / V));
        uv.push_back(static_cast<float>(1.0 - (r + 0.5) / U));
      }
  const int64_t N = static_cast<int64_t>(pixels.size());
  t.pixel_of_vertex = torch::from_blob(pixels.data(), {N}, torch::kLong).clone();
  t.vertex_uv = torch::from_blob(uv.data(), {N, 2}, torch::kFloat).clone();

  std::vector<int64_t> tris;
  for (int64_t r = 0; r + 1 < U; ++r)
    for (int64_t c = 0; c + 1 < V; ++c) {
      if (!(m[r][c] && m[r][c + 1] && m[r + 1][c] && m[r + 1][c + 1])) continue;
      const int64_t tl = vop[r][c], tr = vop[r][c + 1], bl = vop[r + 1][c], br = vop[r + 1][c + 1];
      // Block centre column c + 0.5 vs the centre line (V - 1) / 2: mirrored diagonals.
      if (2 * c + 1 < V - 1) {
        tris.insert(tris.end(), {tl, bl, tr, tr, bl, br});
      } else {
        tris.insert(tris.end(), {tl, bl, br, tl, br, tr});
      }
    }
  t.triangles = torch::from_blob(tris.data(), {static_cast<int64_t>(tris.size() / 3), 3}, torch::kLong).clone();

  std::vector<int64_t> flip(N, -1);
  for (int64_t k = 0; k < N; ++k) {
    const int64_t r = pixels[k] / V, c = pixels[k] % V;
    flip[k] = vop[r][V - 1 - c];
  }
  t.flip = torch::from_blob(flip.data(), {N}, torch::kLong).clone();

  auto lm = landmarks68_uv.to(at::kCPU, at::kDouble).contiguous();
  auto la = lm.accessor<double, 2>();
  std::vector<int64_t> lmv(68, -1);
  if (N > 0) {
    for (int i = 0; i < 68; ++i) {
      double best = std::numeric_limits<double>::max();
      for (int64_t k = 0; k < N; ++k) {
        const double dr = static_cast<double>(pixels[k] / V) - la[i][0];
        const double dc = static_cast<double>(pixels[k] % V) - la[i][1];
        const double d = dr * dr + dc * dc;
        if (d < best) { best = d; lmv[i] = k; }
      }
    }
  }
  t.landmarks68 = torch::from_blob(lmv.data(), {68}, torch::kLong).clone();
  t.regions = RegionBoxes(landmarks68_uv, t.uv_rows, t.uv_cols);
  return t;
}

at::Tensor VertexNormals(const FaceTopology& topology, const at::Tensor& vertices) {
  if (!vertices.defined() || vertices.dim() != 3 || vertices.size(2) != 3 ||
      vertices.size(1) != topology.num_vertices())
    throw Error("render::VertexNormals: vertices must be [B, N, 3] with N = " +
                std::to_string(topology.num_vertices()));
  if (!vertices.is_floating_point()) throw Error("render::VertexNormals: vertices must be floating point");
  auto n = kernels::VertexNormalSum(vertices, topology.triangles);
  auto len = (n * n).sum(2, true).clamp_min(1e-20).sqrt();
  return n / len;
}

at::Tensor VerticesFromUVMap(const FaceTopology& topology, const at::Tensor& uv_map) {
  if (!uv_map.defined() || uv_map.dim() != 4 || uv_map.size(2) != topology.uv_rows ||
      uv_map.size(3) != topology.uv_cols)
    throw Error("render::VerticesFromUVMap: map must be [B, C, " + std::to_string(topology.uv_rows) + ", " +
                std::to_string(topology.uv_cols) + "]");
  auto flat = uv_map.flatten(2);  // [B, C, U*V]
  return flat.index_select(2, topology.pixel_of_vertex.to(uv_map.device())).transpose(1, 2);
}

at::Tensor UVMapFromVertices(const FaceTopology& topology, const at::Tensor& values) {
  if (!values.defined() || values.dim() != 3 || values.size(1) != topology.num_vertices())
    throw Error("render::UVMapFromVertices: values must be [B, N, C] with N = " +
                std::to_string(topology.num_vertices()));
  const int64_t B = values.size(0), C = values.size(2);
  auto flat = torch::zeros({B, C, static_cast<int64_t>(topology.uv_rows) * topology.uv_cols}, values.options());
  flat = flat.index_copy(2, topology.pixel_of_vertex.to(values.device()), values.transpose(1, 2));
  return flat.view({B, C, topology.uv_rows, topology.uv_cols});
}

at::Tensor FlipUVMap(const at::Tensor& uv_map) { return uv_map.flip({-1}); }

}  // namespace facebatch::render
