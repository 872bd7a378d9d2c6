#include "model/ModelCommands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "model/SyntheticTemplate.h"
#include "render/Template.h"

namespace facebatch::model {

void ModelInitOptions::Check() const {
  if (out.empty()) throw UsageError("model init: --out is required");
  Preset(preset);  // throws on unknown presets
  ParseKind(kind);
  if (!uv.empty()) ParseUvSize(uv);
  ModelConfig c;
  c.SetAblation(ablation);
  if (template_name != "default" && template_name != "synthetic")
    throw UsageError("model init: unknown --template '" + template_name + "' (expected default or synthetic)");
  if (threads < 0) throw UsageError("model init: --threads must be >= 0");
}

ModelInitSummary RunModelInit(const ModelInitOptions& o) {
  o.Check();
  InstallTorchThreadHook();
  env::ConfigureThreads(o.threads);
  ModelConfig config = Preset(o.preset);
  config.kind = ParseKind(o.kind);
  config.SetAblation(o.ablation);
  if (!o.uv.empty()) {
    auto [r, c] = ParseUvSize(o.uv);
    config.uv_rows = r, config.uv_cols = c;
    config.regions = DefaultRegions(r, c);
  }
  render::FaceTemplate tmpl = o.template_name == "synthetic" ? SyntheticTemplate(config.uv_rows, config.uv_cols)
                                                               : render::DefaultTemplate(config.uv_rows, config.uv_cols);
  config.regions = tmpl.topology.regions;  // the local pathways follow the template's landmark-derived boxes
  config.Check();
  FaceModel model = FaceModel::Create(config, tmpl, static_cast<uint64_t>(o.seed));
  model.provenance().command = o.command;
  model.provenance().training_data = "";  // untrained
  model.Save(o.out);
  ModelInitSummary s;
  s.path = o.out;
  s.config = config;
  s.counts = model.CountParameters();
  s.weights_sha256 = model.WeightsHash();
  log::Info("wrote untrained {} model ({} preset, {}x{} UV, ablation {}) to {}", KindName(config.kind), config.preset,
            config.uv_rows, config.uv_cols, config.AblationName(), o.out);
  return s;
}

void ModelInfoOptions::Check() const {
  if (path.empty()) throw UsageError("model info: a model file is required");
}

std::string DescribeModel(const FaceModel& model, const std::string& path) {
  const auto& c = model.config();
  const auto& p = model.provenance();
  auto n = model.CountParameters();
  std::string s;
  s += fmt::format("model file:      {}\n", path);
  s += fmt::format("format:          {} version {}\n", kModelFormat, kModelFormatVersion);
  s += fmt::format("kind:            {}\n", KindName(c.kind));
  s += fmt::format("preset:          {}\n", c.preset);
  s += fmt::format("ablation:        {}\n", c.kind == ModelKind::kLinear ? "-" : c.AblationName());
  s += fmt::format("UV size:         {} x {}\n", c.uv_rows, c.uv_cols);
  s += fmt::format("latents:         l_S = {}, l_A = {}\n", c.latent_shape, c.latent_albedo);
  s += fmt::format("image size:      {}\n", c.image_size);
  s += fmt::format("encoder widths:  {}\n", fmt::join(c.encoder_channels, " "));
  s += fmt::format("encoder heads:   {}\n", c.encoder_head == "linear" ? "linear (flattened map, fully connected)" : "pool (3x3 conv, average-pooled)");
  if (c.kind == ModelKind::kNonlinear) {
    s += fmt::format("global widths:   {} ({} upsampling steps)\n", fmt::join(c.global_channels, " "), c.global_steps());
    if (c.global_local)
      s += fmt::format("local widths:    {} ({} upsampling steps)\n", fmt::join(c.local_channels, " "), c.local_steps());
  }
  static const char* names[] = {"left eye", "right eye", "nose", "mouth"};
  for (int i = 0; i < render::kNumRegions; ++i) {
    const auto& b = c.regions[i];
    s += fmt::format("region {:<9} rows {}..{}, cols {}..{}\n", names[i], b.row0, b.row0 + b.rows - 1, b.col0,
                     b.col0 + b.cols - 1);
  }
  s += fmt::format("parameters:      E {}, D_S {}, D_A {}, total {}\n", n.encoder, n.shape_decoder, n.albedo_decoder,
                   n.total());
  s += fmt::format("template:        {}\n", model.face_template().source);
  s += fmt::format("created:         {}\n", p.created);
  s += fmt::format("facebatch:       {}\n", p.facebatch_version);
  s += fmt::format("command:         {}\n", p.command);
  s += fmt::format("training data:   {}\n", p.training_data.empty() ? "(untrained)" : p.training_data);
  s += fmt::format("training steps:  {}\n", p.training_steps);
  if (!p.parent_hash.empty()) s += fmt::format("parent model:    {}\n", p.parent_hash);
  s += fmt::format("weights sha256:  {}\n", model.WeightsHash());
  return s;
}

ModelInfoSummary RunModelInfo(const ModelInfoOptions& o) {
  o.Check();
  FaceModel model = FaceModel::Load(o.path);
  ModelInfoSummary s;
  s.config = model.config();
  s.counts = model.CountParameters();
  s.provenance = model.provenance();
  s.weights_sha256 = model.WeightsHash();
  s.text = DescribeModel(model, o.path);
  return s;
}

}  // namespace facebatch::model
