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

}  // namespace

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
