#pragma once
// `facebatch export obj|ply|glb|maps|overlay INPUT.h5 [INPUT2.h5 ...] --out DIR`
// (issue 8; docs/export.md, schemas/export.md). Reads shard or merged files
// (batch::ShardReader) image by image and writes, per selected image:
//  - obj | ply | glb: the fitted mesh through Assimp (Mesh.h) with per-vertex
//    normals and UVs and a material referencing the albedo texture PNG;
//  - maps: the UV maps as 16-bit PNG (value range in export.json and a PNG tEXt
//    chunk) or 32-bit float EXR (Maps.h), plus the SH shading map;
//  - overlay: the original image beside the fitted render with the mesh
//    wireframe and the 68 landmarks (Overlay.h);
//  - preview: (inputs are exported mesh files, not shards) each mesh imported
//    back with Assimp and rendered textured and lit (Preview.h), optionally
//    beside another picture (--beside).
// Output names come from the image ids (sanitised, unique); DIR/export.json
// lists what was written (format `facebatch-export`, schema version 1).
// Images run in parallel (TBB); one bad image gets status `failed` and a reason
// in export.json and the export goes on (exit code 3).
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace facebatch::exporter {

inline constexpr const char* kExportFormat = "facebatch-export";
inline constexpr int kExportSchemaVersion = 1;

struct ExportOptions {
  std::string kind;                 ///< first positional: obj | ply | glb | maps | overlay | preview
  std::vector<std::string> inputs;  ///< shard or merged files (positional, at least one); mesh files for preview
  std::string out;                  ///< --out DIR (required; created)
  std::string ids;                  ///< --ids a,b or @FILE (one id a line); "" = every image
  std::string status = "ok";        ///< --status ok | failed | all: the fit status of the images to export
  std::string range;                ///< --range A:B rows [A, B) of the inputs taken in order (A or B may be empty)
  std::string space = "model";      ///< --space model | image (meshes; see Mesh.h for the frames)
  std::string component = "albedo"; ///< --component albedo | albedo_proxy: the texture of meshes and overlays
  std::string maps = "all";         ///< --maps all | comma list of shape, shape_proxy, albedo, albedo_proxy,
                                    ///<   shape_residual, albedo_residual, shading (export maps)
  std::string map_format = "png16"; ///< --map-format png16 | exr (export maps)
  int overlay_max_size = 1024;      ///< --overlay-max-size: panels larger than this (pixels, longer side) are scaled down
  int preview_size = 512;           ///< --preview-size: preview pictures are this many pixels square
  std::string beside;               ///< --beside IMG: preview pictures get IMG (scaled to the same height) on their right
  int threads = 0;                  ///< --threads (0 = all cores)
  std::string progress = "auto";    ///< --progress auto | bar | log | none
  std::string command;              ///< the command line, recorded in export.json (set by the CLI)
  void Check() const;               ///< UsageError
};

/// One selected image and what became of it (a row of export.json "items").
struct ExportItem {
  std::string id;
  int input = 0;                   ///< index into the inputs
  int64_t row = 0;                 ///< row in that input file
  std::string fit_status;          ///< /images/status ("" when the id was not found)
  std::string status;              ///< exported | failed
  std::string reason;              ///< why it failed
  std::vector<std::string> files;  ///< written files, relative to DIR
  /// export maps with png16: per map name its per-channel [min, max] (decoding range).
  std::map<std::string, std::vector<std::array<double, 2>>> ranges;
};

struct ExportSummary {
  std::string manifest;  ///< DIR/export.json
  std::vector<ExportItem> items;
  int64_t exported = 0, failed = 0;
  double seconds = 0;
  int ExitCode() const;  ///< kExitOk, or kExitSomeFailed when some item failed
  std::string ToString() const;
};

/// Runs the export. Run-level problems (unreadable input, a dataset the kind
/// needs missing from an input, an unknown schema version) throw InputError
/// naming the file (and the dataset).
ExportSummary RunExport(const ExportOptions& options);

/// "folder/img 01.jpg" -> "folder_img_01.jpg": keeps [A-Za-z0-9._-], replaces
/// the rest with '_', never starts with '.'; `taken` makes it unique ("-2", "-3", ...).
std::string OutputStem(const std::string& id, std::map<std::string, int>& taken);

}  // namespace facebatch::exporter
