#include "fit/Camera.h"

#include <torch/torch.h>

#include "core/Error.h"

namespace facebatch::fit {

at::Tensor EstimateWeakPerspective(const at::Tensor& points3d, const at::Tensor& points2d, const at::Tensor& weights,
                                   const at::Tensor& fallback) {
  torch::NoGradGuard no_grad;
  if (points3d.dim() != 3 || points3d.size(2) != 3 || points2d.dim() != 3 || points2d.size(2) != 2 ||
      points2d.size(0) != points3d.size(0) || points2d.size(1) != points3d.size(1) ||
      weights.sizes() != points2d.sizes().slice(0, 2) || fallback.dim() != 3 || fallback.size(1) != 2 ||
      fallback.size(2) != 4)
    throw Error("EstimateWeakPerspective: expected points3d [B, K, 3], points2d [B, K, 2], weights [B, K], "
                "fallback [B, 2, 4]");
  const auto X = points3d.to(torch::kDouble), x = points2d.to(torch::kDouble);
  const auto w = (weights.to(torch::kDouble) > 0).to(torch::kDouble).unsqueeze(-1);  // [B, K, 1]
  const int64_t B = X.size(0);
  const auto wsum = w.sum(1, true).clamp_min(1e-12);                                  // [B, 1, 1]
  // Centred coordinates make the scaled-orthographic step a pure 2x3 problem.
  const auto mX = (X * w).sum(1, true) / wsum, mx = (x * w).sum(1, true) / wsum;
  const auto Xc = X - mX, xc = x - mx;
  // Affine 2x3: A^T = (Xc^T W Xc)^-1 Xc^T W xc (a tiny ridge keeps flat point sets solvable).
  const auto XtX = (Xc * w).transpose(1, 2).matmul(Xc) + 1e-9 * torch::eye(3, X.options()).unsqueeze(0);
  const auto Xtx = (Xc * w).transpose(1, 2).matmul(xc);  // [B, 3, 2]
  auto A = at::linalg_solve(XtX, Xtx).transpose(1, 2);   // [B, 2, 3]
  // Nearest scaled orthographic projection: A = U S V^T -> s U [I 0] V^T, s = mean(S).
  auto [U, S, Vh] = at::linalg_svd(A, /*full_matrices=*/false);  // U [B,2,2], S [B,2], Vh [B,2,3]
  const auto s = S.mean(1).view({B, 1, 1});
  A = s * U.matmul(Vh);
  const auto t = (mx - mX.matmul(A.transpose(1, 2))).squeeze(1);  // [B, 2]
  auto M = torch::cat({A, t.unsqueeze(2)}, 2);                    // [B, 2, 4]
  const auto enough = (w.squeeze(-1).sum(1) >= 4).view({B, 1, 1});
  const auto finite = torch::isfinite(M).flatten(1).all(1).view({B, 1, 1});
  return torch::where(enough & finite, M, fallback.to(torch::kDouble)).to(points3d.options().dtype(torch::kFloat));
}

}  // namespace facebatch::fit
