#pragma once
// `facebatch model init|info`: typed options and Run functions (the thin CLI
// is tools/facebatch/ModelCommand.cpp).
#include <cstdint>
#include <string>

#include "model/FaceModel.h"

namespace facebatch::model {

struct ModelInitOptions {
  std::string preset = "demo";        ///< paper | demo
  std::string kind = "nonlinear";     ///< nonlinear | linear
  std::string uv;                     ///< "RxC" overrides the preset's UV size ("" = preset's)
  std::string ablation = "gl-proxy";  ///< nonlinear (global only) | gl | gl-proxy (paper)
  std::string template_name = "default";  ///< default (MediaPipe canonical face, render::DefaultTemplate) | synthetic
  std::string out;                    ///< output model file (required)
  int64_t seed = 0;                   ///< weight initialisation seed
  int threads = 0;                    ///< compute threads (0 = all cores)
  std::string command;                ///< recorded as provenance (set by the CLI)
  void Check() const;                 ///< UsageError on bad values
};

struct ModelInitSummary {
  std::string path;
  ModelConfig config;
  ParameterCounts counts;
  std::string weights_sha256;
};

/// Creates an untrained model and writes it to options.out.
ModelInitSummary RunModelInit(const ModelInitOptions& options);

struct ModelInfoOptions {
  std::string path;  ///< model file (required)
  void Check() const;
};

struct ModelInfoSummary {
  ModelConfig config;
  ParameterCounts counts;
  Provenance provenance;
  std::string weights_sha256;
  std::string text;  ///< human-readable description (what `model info` prints)
};

ModelInfoSummary RunModelInfo(const ModelInfoOptions& options);

/// The text `model info` prints for a loaded model.
std::string DescribeModel(const FaceModel& model, const std::string& path);

}  // namespace facebatch::model
