// `facebatch linear-model`: the PCA baseline of the ablation (ModelEval.h).
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "model/FaceModel.h"
#include "model/ModelConfig.h"
#include "render/Template.h"
#include "synth/GroundTruth.h"
#include "train/ModelEval.h"

namespace facebatch::train {

void LinearModelOptions::Check() const {
  if (ground_truth.empty()) throw UsageError("linear-model: --ground-truth is required");
  if (out.empty()) throw UsageError("linear-model: --out is required");
  (void)model::Preset(preset);
  if (rank_shape < 0 || rank_albedo < 0) throw UsageError("linear-model: --rank-shape and --rank-albedo must be >= 0");
  if (max_maps < 0 || max_maps == 1) throw UsageError("linear-model: --max-maps must be 0 or >= 2");
  if (threads < 0) throw UsageError("linear-model: --threads must be >= 0");
}

LinearModelSummary RunLinearModel(const LinearModelOptions& o) {
  o.Check();
  env::ConfigureThreads(o.threads);
  synth::GroundTruth gt = synth::ReadGroundTruth(o.ground_truth);
  model::ModelConfig config = model::Preset(o.preset);
  if (gt.uv_rows != config.uv_rows || gt.uv_cols != config.uv_cols)
    log::Warn("linear-model: the UV size is the ground truth's {}x{} (the {} preset has {}x{})", gt.uv_rows,
              gt.uv_cols, o.preset, config.uv_rows, config.uv_cols);
  config.uv_rows = gt.uv_rows, config.uv_cols = gt.uv_cols;
  const int64_t n = o.max_maps > 0 ? std::min<int64_t>(o.max_maps, gt.size()) : gt.size();
  if (n < 2) throw InputError(o.ground_truth, "a linear model needs at least 2 ground-truth rows");
  LinearModelSummary s;
  s.maps = n;
  s.rank_shape = static_cast<int>(std::min<int64_t>(o.rank_shape > 0 ? o.rank_shape : config.latent_shape, n - 1));
  s.rank_albedo = static_cast<int>(std::min<int64_t>(o.rank_albedo > 0 ? o.rank_albedo : config.latent_albedo, n - 1));
  auto tmpl = render::DefaultTemplate(config.uv_rows, config.uv_cols);
  config.regions = tmpl.topology.regions;
  auto shapes = gt.shape_uv.narrow(0, 0, n), albedos = gt.albedo_uv.narrow(0, 0, n);
  log::Info("linear-model: PCA of {} ground-truth maps of {} ({} shape, {} albedo components)", n, o.ground_truth,
            s.rank_shape, s.rank_albedo);
  auto m = model::BuildLinearModel(shapes, albedos, s.rank_shape, s.rank_albedo, tmpl, config, o.seed);
  // Explained variance: the singular values of the centred maps.
  auto explained = [&](const at::Tensor& maps, int rank) {
    auto x = maps.reshape({n, -1}).to(torch::kDouble);
    auto sv = torch::linalg_svdvals(x - x.mean(0)).pow(2);
    const double total = sv.sum().item<double>();
    return total > 0 ? sv.slice(0, 0, rank).sum().item<double>() / total : 1.0;
  };
  s.explained_shape = explained(shapes, s.rank_shape);
  s.explained_albedo = explained(albedos, s.rank_albedo);
  m.provenance().command = o.command;
  m.provenance().training_data = fmt::format("PCA of the first {} shape and albedo maps of {} (corpus {}, seed {})", n,
                                             o.ground_truth, gt.corpus, gt.seed);
  m.provenance().training_steps = 0;
  std::filesystem::path out(o.out);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  m.Save(o.out);
  s.path = o.out;
  s.weights_sha256 = m.WeightsHash();
  return s;
}

}  // namespace facebatch::train
