#include "render/RenderTemplate.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/Error.h"
#include "core/Log.h"
#include "render/Lighting.h"
#include "render/Png.h"
#include "render/Projection.h"
#include "render/Render.h"
#include "render/Template.h"

namespace facebatch::render {

namespace {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<double> Yaws(const std::string& s) {
  std::vector<double> out;
  for (const auto& item : SplitList(s)) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || std::abs(v) > 90) throw UsageError("--yaws: bad angle '" + item + "' (degrees in [-90, 90])");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--yaws: no angle given");
  return out;
}

at::Tensor Light(const std::string& name) {
  // Slightly warm key light, neutral ambient (linear RGB).
  if (name == "front") return SimpleLighting(1, 0.45, 0.65, 0.0, 0.1, 1.0, 1.0, 0.97, 0.92);
  if (name == "left") return SimpleLighting(1, 0.35, 0.85, -0.8, 0.3, 0.6, 1.0, 0.97, 0.92);
  if (name == "right") return SimpleLighting(1, 0.35, 0.85, 0.8, 0.3, 0.6, 1.0, 0.97, 0.92);
  if (name == "top") return SimpleLighting(1, 0.35, 0.8, 0.0, 0.9, 0.45, 1.0, 0.97, 0.92);
  if (name == "ambient") return SimpleLighting(1, 1.0, 0.0, 0.0, 0.0, 1.0);
  throw UsageError("--lights: unknown light '" + name + "' (front|left|right|top|ambient)");
}

}  // namespace

void RenderTemplateOptions::Check() const {
  if (out_dir.empty()) throw UsageError("--out is required");
  if (uv_rows < 8 || uv_cols < 8 || uv_rows > 2048 || uv_cols > 2048) throw UsageError("--uv-rows/--uv-cols must be in [8, 2048]");
  if (size < 16 || size > 4096) throw UsageError("--size must be in [16, 4096]");
  Yaws(yaws);
  auto ls = SplitList(lights);
  if (ls.empty()) throw UsageError("--lights: no light given");
  for (const auto& l : ls) Light(l);
}

RenderTemplateSummary RunRenderTemplate(const RenderTemplateOptions& o) {
  o.Check();
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  std::filesystem::create_directories(o.out_dir);
  const auto t = DefaultTemplate(o.uv_rows, o.uv_cols);
  RenderTemplateSummary summary;
  summary.vertices = t.topology.num_vertices();
  summary.triangles = t.topology.num_triangles();
  auto S = VerticesFromUVMap(t.topology, t.mean_shape.unsqueeze(0));
  auto A = VerticesFromUVMap(t.topology, t.mean_albedo.unsqueeze(0));
  const auto centre = S[0].mean(0);  // rotate about the face centroid
  const double scale = 0.8 * o.size / 18.0;  // the face is ~18 cm tall
  const auto yaws = Yaws(o.yaws);
  const auto lights = SplitList(o.lights);
  std::vector<at::Tensor> rows;
  for (const auto& light : lights) {
    std::vector<at::Tensor> row;
    for (double yaw : yaws) {
      auto zero = torch::zeros({1});
      auto R = RotationFromPoseAngles(zero, torch::full({1}, yaw * M_PI / 180.0), zero);
      auto c = torch::matmul(R[0], centre);  // view-frame centroid
      const double half = 0.5 * (o.size - 1);
      auto tx = half - scale * c[0].item<double>(), ty = half + scale * c[1].item<double>();
      auto M = ComposeM(torch::full({1}, scale), R, torch::tensor({{tx, ty}}, torch::kFloat));
      auto r = Render(t.topology, S, A, M, Light(light), o.size, o.size);
      // Grey background so the silhouette shows.
      auto img = r.image[0] + (1 - r.mask[0]) * 0.18;
      std::ostringstream name;
      name << "template_yaw" << (yaw >= 0 ? "+" : "") << static_cast<int>(std::lround(yaw)) << "_" << light << ".png";
      const auto path = (std::filesystem::path(o.out_dir) / name.str()).string();
      WritePng(path, img);
      summary.files.push_back(path);
      row.push_back(img);
    }
    rows.push_back(torch::cat(row, 2));
  }
  if (o.uv_maps) {
    const auto p1 = (std::filesystem::path(o.out_dir) / "template_uv_albedo.png").string();
    WritePng(p1, t.mean_albedo);
    summary.files.push_back(p1);
    // Shape map as colours: x, y, z normalised to [0, 1] inside the mask.
    auto s = t.mean_shape;
    auto m = t.topology.mask.unsqueeze(0).to(torch::kFloat);
    auto lo = std::get<0>(s.flatten(1).min(1)).view({3, 1, 1}), hi = std::get<0>(s.flatten(1).max(1)).view({3, 1, 1});
    const auto p2 = (std::filesystem::path(o.out_dir) / "template_uv_shape.png").string();
    WritePng(p2, (s - lo) / (hi - lo) * m, false);
    summary.files.push_back(p2);
  }
  const auto sheet = (std::filesystem::path(o.out_dir) / "template_sheet.png").string();
  WritePng(sheet, torch::cat(rows, 1));
  summary.files.push_back(sheet);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::Info("render-template: {} vertices, {} triangles, {} files in {:.2f} s", summary.vertices, summary.triangles,
            summary.files.size(), summary.seconds);
  return summary;
}

}  // namespace facebatch::render
