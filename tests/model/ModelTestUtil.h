#pragma once
// Small configurations and templates shared by the model tests.
#include <torch/torch.h>

#include "model/FaceModel.h"
#include "model/SyntheticTemplate.h"

namespace facebatch::model::testutil {

/// A tiny nonlinear configuration (fast on CPU): 40 x 48 UV, 3 global steps, 64 px images.
inline ModelConfig TinyConfig(int U = 40, int V = 48) {
  ModelConfig c;
  c.preset = "test";
  c.uv_rows = U;
  c.uv_cols = V;
  c.latent_shape = 12;
  c.latent_albedo = 10;
  c.image_size = 64;
  c.encoder_channels = {4, 8, 8};
  c.global_channels = {12, 8, 8, 6};
  c.local_channels = {8, 6, 6, 4};
  c.fusion_channels = 8;
  c.regions = DefaultRegions(U, V);
  return c;
}

/// The smaller configuration of the fit and fit-job tests: 24 x 28 UV, 2 encoder
/// stages, 64 px images, regions of the synthetic template.
inline ModelConfig SmallFitConfig() {
  ModelConfig c;
  c.preset = "test";
  c.uv_rows = 24;
  c.uv_cols = 28;
  c.latent_shape = 8;
  c.latent_albedo = 8;
  c.image_size = 64;
  c.encoder_channels = {4, 8};
  c.global_channels = {8, 8, 6};
  c.local_channels = {6, 4};
  c.fusion_channels = 6;
  c.regions = SyntheticTemplate(c.uv_rows, c.uv_cols).topology.regions;
  return c;
}

inline render::FaceTemplate TemplateFor(const ModelConfig& c) {
  auto t = SyntheticTemplate(c.uv_rows, c.uv_cols);
  t.topology.regions = c.regions;
  return t;
}

inline FaceModel TinyModel(const ModelConfig& c, uint64_t seed = 1) {
  return FaceModel::Create(c, TemplateFor(c), seed);
}

}  // namespace facebatch::model::testutil
