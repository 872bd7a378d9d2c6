// Autograd kernels with CPU loops (see Kernels.h).
#include "render/Kernels.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

namespace facebatch::render::kernels {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

bool UseCpuLoop(const at::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

// ---- gather / put ----

at::Tensor GatherImpl(const at::Tensor& src_in, const at::Tensor& idx_in) {
  if (!src_in.is_cpu()) return src_in.index_select(0, idx_in.to(src_in.device()));
  auto src = src_in.contiguous();
  auto idx = idx_in.to(at::kCPU).contiguous();
  const int64_t K = idx.size(0), C = src.size(1);
  auto out = torch::empty({K, C}, src.options());
  AT_DISPATCH_ALL_TYPES(src.scalar_type(), "GatherRows", [&] {
    const scalar_t* s = src.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, K, 16384), [&](const tbb::blocked_range<int64_t>& r) {
      for (int64_t k = r.begin(); k < r.end(); ++k)
        for (int64_t c = 0; c < C; ++c) o[k * C + c] = s[ix[k] * C + c];
    });
  });
  return out;
}

// out[idx[k]] += values[k] (serial: indices may repeat).
at::Tensor ScatterAddImpl(const at::Tensor& values_in, const at::Tensor& idx_in, int64_t rows) {
  if (!UseCpuLoop(values_in))
    return torch::zeros({rows, values_in.size(1)}, values_in.options()).index_add(0, idx_in.to(values_in.device()), values_in);
  auto values = values_in.contiguous();
  auto idx = idx_in.to(at::kCPU).contiguous();
  const int64_t K = idx.size(0), C = values.size(1);
  auto out = torch::zeros({rows, C}, values.options());
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "ScatterAddRows", [&] {
    const scalar_t* v = values.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < C; ++c) o[ix[k] * C + c] += v[k * C + c];
  });
  return out;
}

at::Tensor PutImpl(const at::Tensor& values_in, const at::Tensor& idx_in, int64_t rows) {
  if (!UseCpuLoop(values_in))
    return torch::zeros({rows, values_in.size(1)}, values_in.options()).index_copy(0, idx_in.to(values_in.device()), values_in);
  auto values = values_in.contiguous();
  auto idx = idx_in.to(at::kCPU).contiguous();
  const int64_t K = idx.size(0), C = values.size(1);
  auto out = torch::zeros({rows, C}, values.options());
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "PutRows", [&] {
    const scalar_t* v = values.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t* ix = idx.data_ptr<int64_t>();
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, K, 16384), [&](const tbb::blocked_range<int64_t>& r) {
      for (int64_t k = r.begin(); k < r.end(); ++k)
        for (int64_t c = 0; c < C; ++c) o[ix[k] * C + c] = v[k * C + c];
    });
  });
  return out;
}

class GatherRowsFn : public torch::autograd::Function<GatherRowsFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& src, const at::Tensor& idx) {
    ctx->save_for_backward({idx});
    ctx->saved_data["rows"] = src.size(0);
    return GatherImpl(src, idx);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto idx = ctx->get_saved_variables()[0];
    return {ScatterAddImpl(grads[0], idx, ctx->saved_data["rows"].toInt()), at::Tensor()};
  }
};

class PutRowsFn : public torch::autograd::Function<PutRowsFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& values, const at::Tensor& idx, int64_t rows) {
    ctx->save_for_backward({idx});
    return PutImpl(values, idx, rows);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto idx = ctx->get_saved_variables()[0];
    return {GatherImpl(grads[0], idx), at::Tensor(), at::Tensor()};
  }
};

// ---- vertex normals ----

template <typename T>
inline void Cross(const T* a, const T* b, T* out) {
  out[0] = a[1] * b[2] - a[2] * b[1];
  out[1] = a[2] * b[0] - a[0] * b[2];
  out[2] = a[0] * b[1] - a[1] * b[0];
}

at::Tensor NormalSumTorch(const at::Tensor& V, const at::Tensor& tri) {
  auto v0 = V.index_select(1, tri.select(1, 0));
  auto v1 = V.index_select(1, tri.select(1, 1));
  auto v2 = V.index_select(1, tri.select(1, 2));
  auto fn = torch::cross(v1 - v0, v2 - v0, 2);
  return torch::zeros_like(V).index_add(1, tri.select(1, 0), fn).index_add(1, tri.select(1, 1), fn).index_add(
      1, tri.select(1, 2), fn);
}

class VertexNormalSumFn : public torch::autograd::Function<VertexNormalSumFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& V_in, const at::Tensor& tri_in) {
    auto V = V_in.contiguous();
    auto tri = tri_in.to(at::kCPU).contiguous();
    ctx->save_for_backward({V, tri});
    const int64_t B = V.size(0), N = V.size(1), F = tri.size(0);
    auto out = torch::zeros_like(V);
    AT_DISPATCH_FLOATING_TYPES(V.scalar_type(), "VertexNormalSum", [&] {
      const scalar_t* v = V.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      const int64_t* t = tri.data_ptr<int64_t>();
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const scalar_t* vb = v + b * N * 3;
          scalar_t* ob = o + b * N * 3;
          for (int64_t f = 0; f < F; ++f) {
            const scalar_t *p0 = vb + 3 * t[3 * f], *p1 = vb + 3 * t[3 * f + 1], *p2 = vb + 3 * t[3 * f + 2];
            const scalar_t e1[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
            const scalar_t e2[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
            scalar_t n[3];
            Cross(e1, e2, n);
            for (int k = 0; k < 3; ++k) {
              scalar_t* q = ob + 3 * t[3 * f + k];
              q[0] += n[0], q[1] += n[1], q[2] += n[2];
            }
          }
        }
      });
    });
    return out;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto V = saved[0], tri = saved[1];
    auto G = grads[0].contiguous();
    const int64_t B = V.size(0), N = V.size(1), F = tri.size(0);
    auto gv = torch::zeros_like(V);
    AT_DISPATCH_FLOATING_TYPES(V.scalar_type(), "VertexNormalSumBackward", [&] {
      const scalar_t* v = V.data_ptr<scalar_t>();
      const scalar_t* g = G.data_ptr<scalar_t>();
      scalar_t* o = gv.data_ptr<scalar_t>();
      const int64_t* t = tri.data_ptr<int64_t>();
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const scalar_t* vb = v + b * N * 3;
          const scalar_t* gb = g + b * N * 3;
          scalar_t* ob = o + b * N * 3;
          for (int64_t f = 0; f < F; ++f) {
            const int64_t i0 = t[3 * f], i1 = t[3 * f + 1], i2 = t[3 * f + 2];
            const scalar_t *p0 = vb + 3 * i0, *p1 = vb + 3 * i1, *p2 = vb + 3 * i2;
            const scalar_t e1[3] = {p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]};
            const scalar_t e2[3] = {p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]};
            // d/d e1 of g . (e1 x e2) = e2 x g; d/d e2 = g x e1.
            const scalar_t gs[3] = {gb[3 * i0] + gb[3 * i1] + gb[3 * i2], gb[3 * i0 + 1] + gb[3 * i1 + 1] + gb[3 * i2 + 1],
                                    gb[3 * i0 + 2] + gb[3 * i1 + 2] + gb[3 * i2 + 2]};
            scalar_t d1[3], d2[3];
            Cross(e2, gs, d1);
            Cross(gs, e1, d2);
            for (int c = 0; c < 3; ++c) {
              ob[3 * i1 + c] += d1[c];
              ob[3 * i2 + c] += d2[c];
              ob[3 * i0 + c] -= d1[c] + d2[c];
            }
          }
        }
      });
    });
    return {gv, at::Tensor()};
  }
};

// ---- fused interpolation ----

class InterpolateFn : public torch::autograd::Function<InterpolateFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& screen_in, const at::Tensor& attr_in,
                            const at::Tensor& tri_in, const at::Tensor& ids_in) {
    auto screen = screen_in.contiguous(), attr = attr_in.contiguous();
    auto tri = tri_in.contiguous(), ids = ids_in.contiguous();
    ctx->save_for_backward({screen, attr, tri, ids});
    const int64_t B = ids.size(0), H = ids.size(1), W = ids.size(2), N = screen.size(1), C = attr.size(2);
    auto out = torch::zeros({B, C, H, W}, attr.options());
    AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "InterpolateCPU", [&] {
      const scalar_t* sp = screen.data_ptr<scalar_t>();
      const scalar_t* ap = attr.data_ptr<scalar_t>();
      const int64_t* tp = tri.data_ptr<int64_t>();
      const int64_t* ip = ids.data_ptr<int64_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      const int64_t HW = H * W;
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * H, 8), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t row = r.begin(); row < r.end(); ++row) {
          const int64_t b = row / H, y = row % H;
          const scalar_t* s = sp + b * N * 2;
          const scalar_t* a = ap + b * N * C;
          for (int64_t x = 0; x < W; ++x) {
            const int64_t f = ip[row * W + x];
            if (f < 0) continue;
            const int64_t v0 = tp[3 * f], v1 = tp[3 * f + 1], v2 = tp[3 * f + 2];
            const scalar_t x0 = s[2 * v0], y0 = s[2 * v0 + 1], x1 = s[2 * v1], y1 = s[2 * v1 + 1], x2 = s[2 * v2],
                           y2 = s[2 * v2 + 1];
            scalar_t A = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
            if (std::abs(A) < scalar_t(1e-12)) A = scalar_t(1e-12);
            const scalar_t X = static_cast<scalar_t>(x), Y = static_cast<scalar_t>(y);
            const scalar_t w0 = ((x1 - X) * (y2 - Y) - (y1 - Y) * (x2 - X)) / A;
            const scalar_t w1 = ((x2 - X) * (y0 - Y) - (y2 - Y) * (x0 - X)) / A;
            const scalar_t w2 = 1 - w0 - w1;
            scalar_t* o = op + b * C * HW + y * W + x;
            for (int64_t c = 0; c < C; ++c)
              o[c * HW] = w0 * a[v0 * C + c] + w1 * a[v1 * C + c] + w2 * a[v2 * C + c];
          }
        }
      });
    });
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto screen = saved[0], attr = saved[1], tri = saved[2], ids = saved[3];
    auto g = grads[0].contiguous();
    const int64_t B = ids.size(0), H = ids.size(1), W = ids.size(2), N = screen.size(1), C = attr.size(2);
    auto gs = torch::zeros_like(screen), ga = torch::zeros_like(attr);
    AT_DISPATCH_FLOATING_TYPES(attr.scalar_type(), "InterpolateCPUBackward", [&] {
      const scalar_t* sp = screen.data_ptr<scalar_t>();
      const scalar_t* ap = attr.data_ptr<scalar_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      const int64_t* tp = tri.data_ptr<int64_t>();
      const int64_t* ip = ids.data_ptr<int64_t>();
      scalar_t* gsp = gs.data_ptr<scalar_t>();
      scalar_t* gap = ga.data_ptr<scalar_t>();
      const int64_t HW = H * W;
      // Parallel over images: pixels of one image scatter into shared vertices.
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const scalar_t* s = sp + b * N * 2;
          const scalar_t* a = ap + b * N * C;
          scalar_t* dgs = gsp + b * N * 2;
          scalar_t* dga = gap + b * N * C;
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              const int64_t f = ip[(b * H + y) * W + x];
              if (f < 0) continue;
              const int64_t v[3] = {tp[3 * f], tp[3 * f + 1], tp[3 * f + 2]};
              const scalar_t x0 = s[2 * v[0]], y0 = s[2 * v[0] + 1], x1 = s[2 * v[1]], y1 = s[2 * v[1] + 1],
                             x2 = s[2 * v[2]], y2 = s[2 * v[2] + 1];
              scalar_t A = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0);
              const bool guarded = std::abs(A) < scalar_t(1e-12);
              if (guarded) A = scalar_t(1e-12);
              const scalar_t X = static_cast<scalar_t>(x), Y = static_cast<scalar_t>(y);
              const scalar_t e0 = (x1 - X) * (y2 - Y) - (y1 - Y) * (x2 - X);
              const scalar_t e1 = (x2 - X) * (y0 - Y) - (y2 - Y) * (x0 - X);
              const scalar_t w[3] = {e0 / A, e1 / A, 1 - e0 / A - e1 / A};
              const scalar_t* go = gp + b * C * HW + y * W + x;
              scalar_t gw[3] = {0, 0, 0};
              for (int64_t c = 0; c < C; ++c) {
                const scalar_t gc = go[c * HW];
                for (int k = 0; k < 3; ++k) {
                  dga[v[k] * C + c] += w[k] * gc;
                  gw[k] += gc * a[v[k] * C + c];
                }
              }
              if (guarded) continue;  // the guard is a constant: no gradient to the positions
              // w0 = e0 / A, w1 = e1 / A, w2 = 1 - w0 - w1.
              const scalar_t G0 = (gw[0] - gw[2]) / A, G1 = (gw[1] - gw[2]) / A;
              const scalar_t GA = -(G0 * w[0] + G1 * w[1]);
              // d e0: x1 -> (y2 - Y), y1 -> -(x2 - X), x2 -> -(y1 - Y), y2 -> (x1 - X)
              // d e1: x2 -> (y0 - Y), y2 -> -(x0 - X), x0 -> -(y2 - Y), y0 -> (x2 - X)
              // d A : x0 -> (y1 - y2), y0 -> (x2 - x1), x1 -> (y2 - y0), y1 -> -(x2 - x0),
              //       x2 -> -(y1 - y0), y2 -> (x1 - x0)
              dgs[2 * v[0]] += G1 * (-(y2 - Y)) + GA * (y1 - y2);
              dgs[2 * v[0] + 1] += G1 * (x2 - X) + GA * (x2 - x1);
              dgs[2 * v[1]] += G0 * (y2 - Y) + GA * (y2 - y0);
              dgs[2 * v[1] + 1] += G0 * (-(x2 - X)) + GA * (-(x2 - x0));
              dgs[2 * v[2]] += G0 * (-(y1 - Y)) + G1 * (y0 - Y) + GA * (-(y1 - y0));
              dgs[2 * v[2] + 1] += G0 * (x1 - X) + G1 * (-(x0 - X)) + GA * (x1 - x0);
            }
        }
      });
    });
    return {gs, ga, at::Tensor(), at::Tensor()};
  }
};

// ---- SH shading ----

constexpr double kC0 = 0.282095, kC1 = 0.488603, kC2 = 1.092548, kC3 = 0.315392, kC4 = 0.546274;

template <typename T>
inline void SHBasis9(T x, T y, T z, T* Y) {
  Y[0] = T(kC0);
  Y[1] = T(kC1) * y;
  Y[2] = T(kC1) * z;
  Y[3] = T(kC1) * x;
  Y[4] = T(kC2) * x * y;
  Y[5] = T(kC2) * y * z;
  Y[6] = T(kC3) * (3 * z * z - 1);
  Y[7] = T(kC2) * x * z;
  Y[8] = T(kC4) * (x * x - y * y);
}

class SHShadeFn : public torch::autograd::Function<SHShadeFn> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& n_in, const at::Tensor& L_in) {
    auto n = n_in.contiguous(), L = L_in.contiguous();
    ctx->save_for_backward({n, L});
    const int64_t B = n.size(0), N = n.size(1);
    auto out = torch::empty_like(n);
    AT_DISPATCH_FLOATING_TYPES(n.scalar_type(), "SHShadingCPU", [&] {
      const scalar_t* np = n.data_ptr<scalar_t>();
      const scalar_t* lp = L.data_ptr<scalar_t>();
      scalar_t* op = out.data_ptr<scalar_t>();
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * N, 8192), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t i = r.begin(); i < r.end(); ++i) {
          const scalar_t* l = lp + (i / N) * 27;
          scalar_t Y[9];
          SHBasis9(np[3 * i], np[3 * i + 1], np[3 * i + 2], Y);
          for (int c = 0; c < 3; ++c) {
            scalar_t acc = 0;
            for (int k = 0; k < 9; ++k) acc += l[9 * c + k] * Y[k];
            op[3 * i + c] = acc;
          }
        }
      });
    });
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto n = saved[0], L = saved[1];
    auto g = grads[0].contiguous();
    const int64_t B = n.size(0), N = n.size(1);
    auto gn = torch::empty_like(n), gL = torch::zeros_like(L);
    AT_DISPATCH_FLOATING_TYPES(n.scalar_type(), "SHShadingCPUBackward", [&] {
      const scalar_t* np = n.data_ptr<scalar_t>();
      const scalar_t* lp = L.data_ptr<scalar_t>();
      const scalar_t* gp = g.data_ptr<scalar_t>();
      scalar_t* gnp = gn.data_ptr<scalar_t>();
      scalar_t* glp = gL.data_ptr<scalar_t>();
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const scalar_t* l = lp + b * 27;
          double acc[27] = {0};
          for (int64_t v = 0; v < N; ++v) {
            const int64_t i = b * N + v;
            const scalar_t x = np[3 * i], y = np[3 * i + 1], z = np[3 * i + 2];
            scalar_t Y[9];
            SHBasis9(x, y, z, Y);
            const scalar_t* gc = gp + 3 * i;
            scalar_t h[9];
            for (int k = 0; k < 9; ++k) {
              h[k] = gc[0] * l[k] + gc[1] * l[9 + k] + gc[2] * l[18 + k];
              for (int c = 0; c < 3; ++c) acc[9 * c + k] += gc[c] * Y[k];
            }
            const scalar_t c1 = scalar_t(kC1), c2 = scalar_t(kC2), c3 = scalar_t(kC3), c4 = scalar_t(kC4);
            gnp[3 * i] = h[3] * c1 + h[4] * c2 * y + h[7] * c2 * z + h[8] * 2 * c4 * x;
            gnp[3 * i + 1] = h[1] * c1 + h[4] * c2 * x + h[5] * c2 * z - h[8] * 2 * c4 * y;
            gnp[3 * i + 2] = h[2] * c1 + h[5] * c2 * y + h[6] * 6 * c3 * z + h[7] * c2 * x;
          }
          for (int k = 0; k < 27; ++k) glp[b * 27 + k] = static_cast<scalar_t>(acc[k]);
        }
      });
    });
    return {gn, gL};
  }
};

}  // namespace

at::Tensor SHShadingCPU(const at::Tensor& normals, const at::Tensor& L) {
  if (!UseCpuLoop(normals) || !L.is_cpu() || L.scalar_type() != normals.scalar_type()) return at::Tensor();
  return SHShadeFn::apply(normals, L);
}

at::Tensor InterpolateCPU(const at::Tensor& triangles, const at::Tensor& triangle_id, const at::Tensor& screen,
                          const at::Tensor& attributes) {
  if (!UseCpuLoop(attributes) || !screen.is_cpu()) return at::Tensor();
  return InterpolateFn::apply(screen.to(attributes.scalar_type()), attributes, triangles.to(at::kCPU),
                              triangle_id.to(at::kCPU));
}

at::Tensor GatherRows(const at::Tensor& src, const at::Tensor& idx) { return GatherRowsFn::apply(src, idx); }

at::Tensor TakeRows(const at::Tensor& src, const at::Tensor& idx) { return GatherImpl(src, idx); }

at::Tensor PutRows(const at::Tensor& values, const at::Tensor& idx, int64_t rows) {
  return PutRowsFn::apply(values, idx, rows);
}

at::Tensor VertexNormalSum(const at::Tensor& vertices, const at::Tensor& triangles) {
  if (!UseCpuLoop(vertices)) return NormalSumTorch(vertices, triangles.to(vertices.device()));
  return VertexNormalSumFn::apply(vertices, triangles);
}

}  // namespace facebatch::render::kernels
