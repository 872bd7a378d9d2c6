#pragma once
// Counting the floating-point work of the networks (issue 16 item 1): every convolution and
// matrix product the ATen dispatcher runs while a FlopCounter is alive, forward and backward,
// from the operands' shapes (RecordFunction observers, no change to the model code). A
// multiply-add is 2 FLOPs. Elementwise work (BatchNorm, activations, additions) is not
// counted: it is memory-bound and a small share of the arithmetic; the counted ops are those
// an sgemm rate can be compared with.
//
//   convolution (conv2d, conv_transpose2d): 2 N Cout Ho Wo Cin k_h k_w / groups (transposed:
//     2 N Cin Hi Wi Cout k_h k_w / groups, the same GEMM with input and output swapped);
//   convolution_backward: the forward count for grad_input and again for grad_weight, as
//     output_mask asks (the fit's frozen weights ask for grad_input only);
//   mm, addmm: 2 M K N; bmm, baddbmm: 2 B M K N.
#include <cstdint>
#include <string>
#include <vector>

namespace facebatch::bench {

/// One counted operator call: a layer's forward or backward.
struct CountedOp {
  std::string op;          ///< aten::convolution, aten::convolution_backward, aten::addmm, ...
  std::string shapes;      ///< "input [4, 256, 12, 14] weight [256, 128, 3, 3]" (or the matrices)
  double flops = 0;
  /// The same work as one GEMM (rows M, inner K, columns N) for the sgemm reference; 0 if none.
  int64_t gemm_m = 0, gemm_k = 0, gemm_n = 0;
};

/// Counts while alive (process-wide: count one computation at a time). Not copyable.
class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  /// The calls counted so far, in order.
  std::vector<CountedOp> ops() const;
  double total() const;

 private:
  uint64_t handle_ = 0;
};

}  // namespace facebatch::bench
