// bench::FlopCounter (issue 16 item 1): the counts of a convolution, a transposed convolution,
// a linear layer and their backward passes against the formulas worked out by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "bench/FlopCounter.h"

namespace facebatch::bench {
namespace {

TEST(FlopCounter, ConvolutionLinearAndTheirBackwardByHand) {
  torch::manual_seed(1);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1));
  torch::nn::ConvTranspose2d up(torch::nn::ConvTranspose2dOptions(8, 4, 4).stride(2).padding(1));
  torch::nn::Linear fc(16, 5);
  for (auto& p : conv->parameters()) p.requires_grad_(false);
  for (auto& p : up->parameters()) p.requires_grad_(false);
  auto x = torch::randn({2, 3, 10, 12}, torch::requires_grad());
  {
    FlopCounter c;
    auto y = conv(x);  // [2, 8, 5, 6]
    ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 8, 5, 6}));
    auto z = up(y);  // [2, 4, 10, 12]
    ASSERT_EQ(z.sizes(), (std::vector<int64_t>{2, 4, 10, 12}));
    const double conv_f = 2.0 * 2 * 8 * 5 * 6 * 3 * 3 * 3;   // 2 N Co Ho Wo Ci k k
    const double up_f = 2.0 * 2 * 8 * 5 * 6 * 4 * 4 * 4;     // 2 N Ci Hi Wi Co k k
    auto ops = c.ops();
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[0].op, "aten::convolution");
    EXPECT_DOUBLE_EQ(ops[0].flops, conv_f);
    EXPECT_DOUBLE_EQ(ops[1].flops, up_f);
    EXPECT_EQ(ops[0].gemm_m * ops[0].gemm_k * ops[0].gemm_n * 2.0, conv_f);
    // Backward to the input only (frozen weights): one GEMM of the forward's size per layer.
    z.sum().backward();
    ops = c.ops();
    double bwd = 0;
    int n_bwd = 0;
    for (const auto& o : ops)
      if (o.op == "aten::convolution_backward") bwd += o.flops, ++n_bwd;
    EXPECT_EQ(n_bwd, 2);
    EXPECT_DOUBLE_EQ(bwd, conv_f + up_f);
    EXPECT_DOUBLE_EQ(c.total(), 2 * (conv_f + up_f));
  }
  {
    FlopCounter c;
    auto h = torch::randn({7, 16});
    fc(h);  // addmm: 2 x 7 x 16 x 5
    EXPECT_DOUBLE_EQ(c.total(), 2.0 * 7 * 16 * 5);
  }
  FlopCounter idle;  // nothing runs: nothing counted, and the last counter's ops are gone
  EXPECT_EQ(idle.ops().size(), 0u);
}

}  // namespace
}  // namespace facebatch::bench
