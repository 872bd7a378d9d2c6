// The translation unit of facebatch_torch_pch: the target exists only to build the
// precompiled <torch/torch.h> that every other target reuses (FacebatchHelpers.cmake).
namespace facebatch::detail {
int torch_pch_anchor = 0;
}
