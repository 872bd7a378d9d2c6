// Standalone GPU timing of the model networks (E, D_S, D_A; forward and
// forward+backward per image at batch 1 and 8) for a CUDA build of LibTorch.
// Not part of the CMake build (it needs only LibTorch + fmt, so it also builds
// on a GPU machine without the rest of facebatch's dependencies):
//
//   T=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
//   g++ -O2 -std=c++17 -DFMT_HEADER_ONLY -Ilib -I$T/include -I$T/include/torch/csrc/api/include \
//     lib/model/ModelConfig.cpp lib/model/Networks.cpp bench/model_cuda/timing.cpp \
//     -L$T/lib -Wl,--no-as-needed -ltorch -ltorch_cpu -ltorch_cuda -lc10 -lc10_cuda \
//     -Wl,-rpath,$T/lib -o model_cuda_timing && ./model_cuda_timing
// (FMT_HEADER_ONLY: recent PyTorch wheels ship their own fmt headers, which
// shadow the system fmt; header-only mode avoids a link against a different fmt.)
//
// Region boxes are the presets' fractional defaults (model init uses the
// template's landmark boxes, which change parameter counts by < 3%).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "model/Networks.h"

using namespace facebatch::model;

int main() {
  if (!torch::cuda::is_available()) {
    std::printf("CUDA not available\n");
    return 1;
  }
  torch::Device dev(torch::kCUDA);
  std::printf("| preset | part | params | batch | fwd ms/image | fwd+bwd ms/image |\n|---|---|---|---|---|---|\n");
  for (const char* preset : {"demo", "paper"}) {
    auto c = Preset(preset);
    torch::manual_seed(0);
    nets::ModelNet net(c);
    net->to(dev);
    for (int part = 0; part < 3; ++part) {
      static const char* names[] = {"E", "D_S", "D_A"};
      torch::nn::Module& m = part == 0 ? static_cast<torch::nn::Module&>(*net->encoder)
                                       : part == 1 ? static_cast<torch::nn::Module&>(*net->shape_decoder)
                                                   : static_cast<torch::nn::Module&>(*net->albedo_decoder);
      int64_t params = 0;
      for (auto& p : m.parameters()) params += p.numel();
      for (int B : {1, 8}) {
        auto images = torch::rand({B, 3, c.image_size, c.image_size}, dev);
        auto fs = torch::randn({B, c.latent_shape}, dev), fa = torch::randn({B, c.latent_albedo}, dev);
        double ms[2];
        for (int bwd = 0; bwd < 2; ++bwd) {
          net->train(bwd == 1);
          auto step = [&] {
            torch::NoGradGuard* g = bwd ? nullptr : new torch::NoGradGuard();
            torch::Tensor loss;
            if (part == 0) {
              auto o = net->encoder->forward(images);
              loss = o[0].sum() + o[1].sum() + o[2].sum() + o[3].sum();
            } else {
              auto o = (part == 1 ? net->shape_decoder : net->albedo_decoder)->Decode(part == 1 ? fs : fa);
              loss = o.value.sum() + o.proxy.sum();
            }
            if (bwd) {
              net->zero_grad();
              loss.backward();
            }
            delete g;
          };
          for (int i = 0; i < 5; ++i) step();
          torch::cuda::synchronize();
          const int n = 30;
          auto t0 = std::chrono::steady_clock::now();
          for (int i = 0; i < n; ++i) step();
          torch::cuda::synchronize();
          ms[bwd] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / n / B;
        }
        std::printf("| %s | %s | %.2fM | %d | %.3f | %.3f |\n", preset, names[part], params / 1e6, B, ms[0], ms[1]);
      }
    }
  }
  return 0;
}
