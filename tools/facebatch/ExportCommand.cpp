// `facebatch export obj|ply|glb|maps|overlay INPUT.h5 [INPUT2.h5 ...] --out DIR`
// (lib/exporter/Export.h, docs/export.md).
#include <cstdio>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "exporter/Export.h"

namespace facebatch::tools {

int RunExportCommand(int argc, char** argv) {
  exporter::ExportOptions o;
  cli::CommandParser p(
      "export",
      "facebatch export obj|ply|glb|maps|overlay INPUT.h5 [INPUT2.h5 ...] --out DIR [options]\n"
      "       facebatch export preview MESH.obj|ply|glb [...] --out DIR [--beside IMG.png]",
      "Exports fitted faces from shard or merged files (schemas/shard.md), one set of files per image named\n"
      "after its id, plus DIR/export.json (schemas/export.md) listing what was written:\n"
      "  obj | ply | glb  the mesh (Assimp) with normals, UVs and a material with the albedo texture PNG (sRGB)\n"
      "  maps             the UV maps as 16-bit PNG (value range in export.json and a tEXt chunk) or EXR,\n"
      "                   plus the SH shading map\n"
      "  overlay          the original image beside the fitted render with the mesh wireframe and landmarks\n"
      "  preview          (inputs: exported mesh files) each mesh imported back and rendered, textured and lit\n"
      "Exit 0 when every selected image was exported, 3 when some failed (recorded in export.json).");
  namespace po = cli::po;
  p.options().add_options()
      ("kind", po::value(&o.kind), "obj, ply, glb, maps, overlay or preview (first positional argument)")
      ("input", po::value(&o.inputs)->multitoken(), "shard or merged files (positional)")
      ("out", po::value(&o.out), "output directory (created)")
      ("ids", po::value(&o.ids)->default_value(o.ids), "only these image ids: a,b,c or @FILE (one id a line)")
      ("status", po::value(&o.status)->default_value(o.status), "fit status of the images to export: ok, failed or all")
      ("range", po::value(&o.range)->default_value(o.range), "rows A:B (A..B-1) of the inputs taken in order; A or B may be empty")
      ("space", po::value(&o.space)->default_value(o.space), "mesh frame: model (template units, y up) or image (original-image pixels, y down, z away from the camera)")
      ("component", po::value(&o.component)->default_value(o.component), "texture of meshes and overlays: albedo or albedo_proxy")
      ("maps", po::value(&o.maps)->default_value(o.maps), "export maps: all or a comma list of shape, shape_proxy, albedo, albedo_proxy, shape_residual, albedo_residual, shading")
      ("map-format", po::value(&o.map_format)->default_value(o.map_format), "export maps: png16 or exr")
      ("overlay-max-size", po::value(&o.overlay_max_size)->default_value(o.overlay_max_size), "export overlay: scale panels down to this longer side (pixels; 0 = never)")
      ("preview-size", po::value(&o.preview_size)->default_value(o.preview_size), "export preview: picture size (pixels, square)")
      ("beside", po::value(&o.beside)->default_value(o.beside), "export preview: put this picture (scaled to the same height) on the right")
      ("threads", po::value(&o.threads)->default_value(o.threads), "threads (0 = all cores)")
      ("progress", po::value(&o.progress)->default_value(o.progress), "auto, bar, log or none");
  p.Positional("kind", 1);
  p.Positional("input", -1);
  if (!p.Parse(argc, argv)) return kExitOk;
  std::string cmd = "facebatch";
  for (int i = 0; i < argc; ++i) cmd += std::string(" ") + argv[i];
  o.command = cmd;
  o.Check();
  const auto summary = exporter::RunExport(o);
  std::fputs(summary.ToString().c_str(), stdout);
  return summary.ExitCode();
}

}  // namespace facebatch::tools
