#include "train/LatentTargets.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/Error.h"
#include "train/Data.h"

namespace facebatch::train {

at::Tensor LatentTargets::Codes(const at::Tensor& maps) const {
  const int64_t B = maps.size(0);
  auto x = maps.reshape({B, -1}).to(basis.device(), torch::kFloat) - mean.unsqueeze(0);
  auto c = x.matmul(basis.t()) / scale;  // [B, k]
  auto out = torch::zeros({B, latent}, c.options());
  out.slice(1, 0, c.size(1)).copy_(c);
  return out.to(maps.device());
}

void LatentTargets::Save(const std::string& path) const {
  torch::save(std::vector<at::Tensor>{mean, basis, torch::tensor({scale}, torch::kDouble),
                                      torch::tensor({static_cast<int64_t>(latent)})},
              path);
}

LatentTargets LatentTargets::Load(const std::string& path) {
  std::vector<at::Tensor> t;
  try {
    torch::load(t, path);
  } catch (const std::exception& e) {
    throw InputError(path, std::string("not a latent-target archive: ") + e.what());
  }
  if (t.size() != 4) throw InputError(path, "not a latent-target archive (expected 4 tensors)");
  LatentTargets out;
  out.mean = t[0], out.basis = t[1], out.scale = t[2].item<double>(), out.latent = static_cast<int>(t[3].item<int64_t>());
  return out;
}

LatentTargets BuildLatentTargets(const at::Tensor& maps, int latent) {
  torch::NoGradGuard no_grad;
  LatentTargets out;
  out.latent = latent;
  const int64_t N = maps.size(0);
  if (N < 2 || latent < 1) return out;
  auto x = maps.reshape({N, -1}).to(torch::kCPU, torch::kDouble);
  auto mean = x.mean(0);
  auto xc = x - mean;
  auto gram = xc.matmul(xc.t());                      // [N, N]
  auto [evals, evecs] = at::linalg_eigh(gram);        // ascending
  evals = evals.flip(0), evecs = evecs.flip(1);
  const double top = evals[0].item<double>();
  int64_t k = 0;
  const int64_t kmax = std::min<int64_t>(latent, N - 1);
  while (k < kmax && evals[k].item<double>() > 1e-9 * top) ++k;
  if (k == 0) return out;
  auto lam = evals.slice(0, 0, k);
  auto basis = evecs.slice(1, 0, k).t().matmul(xc) / lam.sqrt().unsqueeze(1);  // [k, D], unit rows
  out.mean = mean.to(torch::kFloat);
  out.basis = basis.to(torch::kFloat).contiguous();
  out.scale = std::sqrt((lam / static_cast<double>(N - 1)).mean().item<double>());
  return out;
}

std::pair<at::Tensor, at::Tensor> GroundTruthMaps(const Dataset& dataset, int64_t max_items, uint64_t seed) {
  const auto* gt = dataset.ground_truth();
  std::vector<at::Tensor> shapes, albedos;
  if (gt) {
    const auto perm = EpochPermutation(dataset.size(), seed ^ 0x1a7e47ull, 0);
    for (int64_t i : perm) {
      if (static_cast<int64_t>(shapes.size()) >= max_items) break;
      const int64_t row = gt->Find(dataset.item(i).id);
      if (row < 0) continue;
      shapes.push_back(dataset.TargetShape(row));
      albedos.push_back(gt->albedo_uv[row]);
    }
  }
  if (shapes.empty()) return {torch::zeros({0}), torch::zeros({0})};
  return {torch::stack(shapes), torch::stack(albedos)};
}

}  // namespace facebatch::train
