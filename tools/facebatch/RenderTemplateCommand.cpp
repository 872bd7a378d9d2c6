// `facebatch render-template --out DIR`: preview renders of the default template.
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "render/RenderTemplate.h"

namespace facebatch::tools {

int RunRenderTemplateCommand(int argc, char** argv) {
  render::RenderTemplateOptions opts;
  cli::CommandParser parser("render-template", "facebatch render-template --out DIR [options]",
                            "Renders the default face template (MediaPipe canonical face rasterised into the UV "
                            "grid) at several yaw angles under several lights, and writes PNGs (one per view, a "
                            "contact sheet template_sheet.png, and the UV mean albedo and shape maps).");
  namespace po = cli::po;
  parser.options().add_options()
      ("out", po::value(&opts.out_dir)->default_value(opts.out_dir), "output directory (created)")
      ("uv-rows", po::value(&opts.uv_rows)->default_value(opts.uv_rows), "template UV rows U")
      ("uv-cols", po::value(&opts.uv_cols)->default_value(opts.uv_cols), "template UV columns V")
      ("size", po::value(&opts.size)->default_value(opts.size), "image width and height in pixels")
      ("yaws", po::value(&opts.yaws)->default_value(opts.yaws), "comma-separated yaw angles in degrees (+: nose to image left)")
      ("lights", po::value(&opts.lights)->default_value(opts.lights), "comma-separated lights: front|left|right|top|ambient")
      ("uv-maps", po::value(&opts.uv_maps)->default_value(opts.uv_maps), "also write the UV albedo and shape maps");
  if (!parser.Parse(argc, argv)) return 0;
  opts.Check();
  const auto summary = render::RunRenderTemplate(opts);
  for (const auto& f : summary.files) std::cout << f << "\n";
  return 0;
}

}  // namespace facebatch::tools
