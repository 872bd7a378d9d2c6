#include "model/ModelConfig.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/Error.h"

namespace facebatch::model {

namespace {
const char* const kRegionNames[render::kNumRegions] = {"left_eye", "right_eye", "nose", "mouth"};
}  // namespace

const char* KindName(ModelKind kind) { return kind == ModelKind::kLinear ? "linear" : "nonlinear"; }

ModelKind ParseKind(const std::string& name) {
  if (name == "nonlinear") return ModelKind::kNonlinear;
  if (name == "linear") return ModelKind::kLinear;
  throw UsageError("unknown model kind '" + name + "' (expected nonlinear or linear)");
}

std::array<render::UVBox, render::kNumRegions> DefaultRegions(int U, int V) {
  auto box = [&](double r0, double r1, double c0, double c1) {
    render::UVBox b;
    b.row0 = static_cast<int>(std::floor(r0 * U));
    b.col0 = static_cast<int>(std::floor(c0 * V));
    b.rows = std::max(1, static_cast<int>(std::ceil(r1 * U)) - b.row0);
    b.cols = std::max(1, static_cast<int>(std::ceil(c1 * V)) - b.col0);
    return b;
  };
  std::array<render::UVBox, render::kNumRegions> r{};
  r[render::kLeftEye] = box(0.30, 0.50, 0.18, 0.46);
  r[render::kRightEye] = r[render::kLeftEye];
  r[render::kRightEye].col0 = V - r[render::kLeftEye].col0 - r[render::kLeftEye].cols;  // mirror
  r[render::kNose] = box(0.38, 0.68, 0.36, 0.64);
  r[render::kMouth] = box(0.66, 0.86, 0.30, 0.70);
  return r;
}

int ModelConfig::encoder_feature_size() const {
  int size = image_size;
  for (size_t i = 0; i < encoder_channels.size(); ++i) size = (size + 1) / 2;  // k7s2p3, then k3s2p1
  return size;
}

ModelConfig Preset(const std::string& name) {
  ModelConfig c;
  if (name == "paper") {
    c.preset = "paper";
    c.uv_rows = 192;
    c.uv_cols = 224;
    c.latent_shape = c.latent_albedo = 320;
    c.encoder_channels = {32, 64, 128, 192, 256};
    c.global_channels = {320, 160, 128, 96, 64, 32};
    c.local_channels = {64, 48, 32, 16};
    c.fusion_channels = 64;
  } else if (name == "demo") {
    c.preset = "demo";  // the struct defaults are the demo preset, but for:
    c.encoder_head = "linear";
  } else {
    throw UsageError("unknown preset '" + name + "' (expected paper or demo)");
  }
  c.regions = DefaultRegions(c.uv_rows, c.uv_cols);
  return c;
}

std::pair<int, int> ParseUvSize(const std::string& text) {
  int r = 0, c = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &r, &x, &c, &extra) != 3 || (x != 'x' && x != 'X') || r <= 0 || c <= 0)
    throw UsageError("bad UV size '" + text + "' (expected ROWSxCOLS, e.g. 192x224)");
  return {r, c};
}

void ModelConfig::Check() const {
  auto fail = [](const std::string& m) { throw UsageError("model configuration: " + m); };
  if (uv_rows < 8 || uv_cols < 8) fail(fmt::format("UV size {}x{} too small (min 8x8)", uv_rows, uv_cols));
  if (latent_shape < 1 || latent_albedo < 1) fail("latent sizes must be >= 1");
  if (image_size < 32) fail("image_size must be >= 32");
  if (encoder_channels.size() < 2) fail("encoder_channels needs at least 2 entries");
  for (int ch : encoder_channels)
    if (ch < 1) fail("encoder_channels must be positive");
  if (encoder_head != "pool" && encoder_head != "linear") fail("encoder_head must be pool or linear");
  if (kind == ModelKind::kNonlinear) {
    if (global_channels.size() < 2) fail("global_channels needs at least 2 entries (>= 1 upsampling step)");
    if (global_steps() > 8) fail("at most 8 global upsampling steps");
    for (int ch : global_channels)
      if (ch < 1) fail("global_channels must be positive");
    if (global_local) {
      if (local_channels.size() < 2) fail("local_channels needs at least 2 entries");
      for (int ch : local_channels)
        if (ch < 1) fail("local_channels must be positive");
    }
    if (fusion_channels < 1) fail("fusion_channels must be positive");
  }
  for (int i = 0; i < render::kNumRegions; ++i) {
    const auto& b = regions[i];
    if (b.rows < 1 || b.cols < 1 || b.row0 < 0 || b.col0 < 0 || b.row0 + b.rows > uv_rows || b.col0 + b.cols > uv_cols)
      fail(fmt::format("region {} box (row0 {}, col0 {}, {}x{}) is empty or outside the {}x{} UV map",
                       kRegionNames[i], b.row0, b.col0, b.rows, b.cols, uv_rows, uv_cols));
  }
}

std::string ModelConfig::AblationName() const {
  if (!global_local) return proxy ? "proxy" : "nonlinear";
  return proxy ? "gl-proxy" : "gl";
}

void ModelConfig::SetAblation(const std::string& name) {
  if (name == "nonlinear") {
    global_local = false, proxy = false;
  } else if (name == "gl") {
    global_local = true, proxy = false;
  } else if (name == "gl-proxy") {
    global_local = true, proxy = true;
  } else if (name == "proxy") {
    global_local = false, proxy = true;
  } else {
    throw UsageError("unknown ablation '" + name + "' (expected nonlinear, gl, gl-proxy or proxy)");
  }
}

std::string ModelConfig::ToJson() const {
  nlohmann::ordered_json j;
  j["kind"] = KindName(kind);
  j["preset"] = preset;
  j["uv_rows"] = uv_rows;
  j["uv_cols"] = uv_cols;
  auto regs = nlohmann::ordered_json::array();
  for (int i = 0; i < render::kNumRegions; ++i) {
    nlohmann::ordered_json b;
    b["name"] = kRegionNames[i];
    b["row0"] = regions[i].row0;
    b["col0"] = regions[i].col0;
    b["rows"] = regions[i].rows;
    b["cols"] = regions[i].cols;
    regs.push_back(b);
  }
  j["regions"] = regs;
  j["latent_shape"] = latent_shape;
  j["latent_albedo"] = latent_albedo;
  j["projection_size"] = kProjectionSize;
  j["lighting_size"] = kLightingSize;
  j["image_size"] = image_size;
  j["encoder_channels"] = encoder_channels;
  j["encoder_head"] = encoder_head;
  j["global_channels"] = global_channels;
  j["local_channels"] = local_channels;
  j["fusion_channels"] = fusion_channels;
  j["global_local"] = global_local;
  j["proxy"] = proxy;
  return j.dump(2);
}

ModelConfig ModelConfig::FromJson(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(std::string("model configuration is not valid JSON: ") + e.what());
  }
  ModelConfig c;
  try {
    c.kind = ParseKind(j.at("kind").get<std::string>());
    c.preset = j.value("preset", std::string("custom"));
    c.uv_rows = j.at("uv_rows").get<int>();
    c.uv_cols = j.at("uv_cols").get<int>();
    const auto& regs = j.at("regions");
    if (!regs.is_array() || regs.size() != render::kNumRegions) throw Error("regions must be an array of 4 boxes");
    for (int i = 0; i < render::kNumRegions; ++i) {
      c.regions[i].row0 = regs[i].at("row0").get<int>();
      c.regions[i].col0 = regs[i].at("col0").get<int>();
      c.regions[i].rows = regs[i].at("rows").get<int>();
      c.regions[i].cols = regs[i].at("cols").get<int>();
    }
    c.latent_shape = j.at("latent_shape").get<int>();
    c.latent_albedo = j.at("latent_albedo").get<int>();
    if (j.value("projection_size", kProjectionSize) != kProjectionSize || j.value("lighting_size", kLightingSize) != kLightingSize)
      throw Error("projection/lighting sizes differ from 8/27");
    c.image_size = j.at("image_size").get<int>();
    c.encoder_channels = j.at("encoder_channels").get<std::vector<int>>();
    c.encoder_head = j.value("encoder_head", std::string("pool"));  // files before the field: pool
    c.global_channels = j.at("global_channels").get<std::vector<int>>();
    c.local_channels = j.at("local_channels").get<std::vector<int>>();
    c.fusion_channels = j.at("fusion_channels").get<int>();
    c.global_local = j.at("global_local").get<bool>();
    c.proxy = j.at("proxy").get<bool>();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(std::string("model configuration: ") + e.what());
  }
  try {
    c.Check();
  } catch (const UsageError& e) {
    throw Error(e.what());
  }
  return c;
}

}  // namespace facebatch::model
