#include "bench/FlopCounter.h"

#include <ATen/record_function.h>
#include <fmt/format.h>

#include <mutex>
#include <sstream>

namespace facebatch::bench {
namespace {

std::mutex g_mutex;
std::vector<CountedOp>* g_ops = nullptr;  // the live counter's list (one at a time)

std::vector<int64_t> Sizes(const c10::IValue& v) {
  if (v.isTensor() && v.toTensor().defined()) return v.toTensor().sizes().vec();
  return {};
}

std::string Dims(const std::vector<int64_t>& d) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < d.size(); ++i) os << (i ? ", " : "") << d[i];
  return os.str() + "]";
}

int64_t Prod(const std::vector<int64_t>& d, size_t from) {
  int64_t p = 1;
  for (size_t i = from; i < d.size(); ++i) p *= d[i];
  return p;
}

// Output spatial size of a convolution along one axis.
int64_t ConvOut(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t out_pad, bool transposed) {
  if (transposed) return (in - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1;
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

std::vector<int64_t> IntList(const c10::IValue& v) {
  if (v.isIntList()) return v.toIntVector();
  return {};
}

int64_t At(const std::vector<int64_t>& v, size_t i, int64_t fallback) {
  if (v.empty()) return fallback;
  return v.size() == 1 ? v[0] : (i < v.size() ? v[i] : fallback);
}

// A 2-D convolution's GEMM (per batch): fills op; input [N, Ci, H, W], weight [Co, Ci/g, kh, kw]
// (transposed: [Ci, Co/g, kh, kw]).
bool ConvGemm(const std::vector<int64_t>& x, const std::vector<int64_t>& w, const std::vector<int64_t>& stride,
              const std::vector<int64_t>& pad, const std::vector<int64_t>& dil, const std::vector<int64_t>& out_pad,
              bool transposed, int64_t groups, CountedOp& op) {
  if (x.size() != 4 || w.size() != 4 || groups < 1) return false;
  const int64_t N = x[0], Ci = x[1], H = x[2], W = x[3];
  const int64_t kh = w[2], kw = w[3];
  if (!transposed) {
    const int64_t Co = w[0];
    const int64_t Ho = ConvOut(H, kh, At(stride, 0, 1), At(pad, 0, 0), At(dil, 0, 1), 0, false);
    const int64_t Wo = ConvOut(W, kw, At(stride, 1, 1), At(pad, 1, 0), At(dil, 1, 1), 0, false);
    op.gemm_m = Co;
    op.gemm_k = Ci / groups * kh * kw;
    op.gemm_n = N * Ho * Wo;
  } else {
    const int64_t Co = w[1] * groups;
    (void)out_pad;
    // The transposed convolution is the adjoint GEMM: every input pixel times the kernel.
    op.gemm_m = Co / groups * kh * kw;
    op.gemm_k = Ci;
    op.gemm_n = N * H * W;
    (void)Co;
  }
  op.flops = 2.0 * static_cast<double>(op.gemm_m) * static_cast<double>(op.gemm_k) * static_cast<double>(op.gemm_n);
  return true;
}

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  const bool conv = name == "aten::convolution", conv_bwd = name == "aten::convolution_backward";
  const bool mm = name == "aten::mm", addmm = name == "aten::addmm", bmm = name == "aten::bmm" || name == "aten::baddbmm";
  if (!(conv || conv_bwd || mm || addmm || bmm)) return nullptr;
  const auto inputs = fn.inputs();
  CountedOp op;
  op.op = name;
  if (conv && inputs.size() >= 9) {
    // convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    const auto x = Sizes(inputs[0]), w = Sizes(inputs[1]);
    if (!ConvGemm(x, w, IntList(inputs[3]), IntList(inputs[4]), IntList(inputs[5]), IntList(inputs[7]),
                  inputs[6].toBool(), inputs[8].toInt(), op))
      return nullptr;
    op.shapes = "input " + Dims(x) + " weight " + Dims(w) + (inputs[6].toBool() ? " transposed" : "");
  } else if (conv_bwd && inputs.size() >= 11) {
    // convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
    //                      transposed, output_padding, groups, output_mask)
    const auto x = Sizes(inputs[1]), w = Sizes(inputs[2]);
    if (!ConvGemm(x, w, IntList(inputs[4]), IntList(inputs[5]), IntList(inputs[6]), IntList(inputs[8]),
                  inputs[7].toBool(), inputs[9].toInt(), op))
      return nullptr;
    const auto mask = inputs[10].toBoolList();
    const double passes = (mask.size() > 0 && mask.get(0) ? 1.0 : 0.0) + (mask.size() > 1 && mask.get(1) ? 1.0 : 0.0);
    op.flops *= passes;
    op.shapes = "input " + Dims(x) + " weight " + Dims(w) + (inputs[7].toBool() ? " transposed" : "") +
                fmt::format(" ({}{})", mask.size() > 0 && mask.get(0) ? "grad_input" : "",
                            mask.size() > 1 && mask.get(1) ? " grad_weight" : "");
  } else if (mm || addmm || bmm) {
    const size_t a = addmm || name == "aten::baddbmm" ? 1 : 0;
    if (inputs.size() < a + 2) return nullptr;
    const auto A = Sizes(inputs[a]), B = Sizes(inputs[a + 1]);
    if (A.size() < 2 || B.size() < 2) return nullptr;
    const int64_t batch = A.size() == 3 ? A[0] : 1;
    op.gemm_m = A[A.size() - 2];
    op.gemm_k = A[A.size() - 1];
    op.gemm_n = B[B.size() - 1] * batch;
    op.flops = 2.0 * static_cast<double>(op.gemm_m) * static_cast<double>(op.gemm_k) * static_cast<double>(op.gemm_n);
    op.shapes = Dims(A) + " x " + Dims(B);
    (void)Prod;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_ops) g_ops->push_back(std::move(op));
  return nullptr;
}

}  // namespace

FlopCounter::FlopCounter() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_ops = new std::vector<CountedOp>();
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&OnStart).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

FlopCounter::~FlopCounter() {
  at::removeCallback(handle_);
  std::lock_guard<std::mutex> lock(g_mutex);
  delete g_ops;
  g_ops = nullptr;
}

std::vector<CountedOp> FlopCounter::ops() const {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_ops ? *g_ops : std::vector<CountedOp>{};
}

double FlopCounter::total() const {
  double t = 0;
  for (const auto& o : ops()) t += o.flops;
  return t;
}

}  // namespace facebatch::bench
