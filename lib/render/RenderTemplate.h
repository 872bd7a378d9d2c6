#pragma once
// `facebatch render-template`: renders the default template at a few poses and
// lights to PNG files (docs/images/ shows them; docs/render.md documents it).
#include <string>
#include <vector>

namespace facebatch::render {

struct RenderTemplateOptions {
  std::string out_dir;                    ///< --out DIR (required; created)
  int uv_rows = 192;                      ///< --uv-rows: template UV rows U
  int uv_cols = 224;                      ///< --uv-cols: template UV columns V
  int size = 224;                         ///< --size: image width = height (pixels)
  std::string yaws = "-60,0,60";          ///< --yaws: comma-separated yaw angles (degrees, 3DDFA sign: + turns the nose to image left)
  std::string lights = "front,left,top";  ///< --lights: comma-separated from front|left|right|top|ambient
  bool uv_maps = true;                    ///< --uv-maps: also write the UV mean albedo and mask
  void Check() const;                     ///< throws UsageError
};

struct RenderTemplateSummary {
  std::vector<std::string> files;  ///< written PNGs (last: the contact sheet)
  int64_t vertices = 0;
  int64_t triangles = 0;
  double seconds = 0;
};

RenderTemplateSummary RunRenderTemplate(const RenderTemplateOptions& options);

}  // namespace facebatch::render
