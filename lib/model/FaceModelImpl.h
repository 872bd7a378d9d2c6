#pragma once
// Internal: the state behind FaceModel (torch). Shared by FaceModel.cpp and ModelFile.cpp.
#include <torch/torch.h>

#include "model/FaceModel.h"
#include "model/Networks.h"

namespace facebatch::model {

struct FaceModel::Impl {
  ModelConfig config;
  render::FaceTemplate face_template;
  nets::ModelNet net{nullptr};
  Normalisation norm;
  Provenance provenance;
  torch::Tensor mask;  ///< [1,1,U,V] float32 mask, multiplies decoder offsets
  InferenceOptions inference;  ///< what the networks' layers were last given
};

/// Checks a template against a configuration (shapes of mask and mean maps); Error otherwise.
void CheckTemplate(const render::FaceTemplate& t, const ModelConfig& c);
/// Copies every defined tensor of a template to `device`.
render::FaceTemplate TemplateTo(const render::FaceTemplate& t, c10::Device device);

}  // namespace facebatch::model
