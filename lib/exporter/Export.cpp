#include "exporter/Export.h"

#include <facebatch/Version.h>
#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "batch/ShardFile.h"
#include "batch/ShardReader.h"
#include "core/Env.h"
#include "core/Disk.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "exporter/Maps.h"
#include "exporter/Mesh.h"
#include "exporter/Overlay.h"
#include "exporter/Preview.h"
#include "io/Image.h"

namespace facebatch::exporter {
namespace fs = std::filesystem;
namespace {

const std::vector<std::string> kKinds = {"obj", "ply", "glb", "maps", "overlay", "preview"};

bool IsMesh(const std::string& kind) { return kind == "obj" || kind == "ply" || kind == "glb"; }

std::vector<std::string> SplitComma(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string s;
  while (std::getline(ss, s, ',')) {
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

std::vector<std::string> AllMapNames() {
  auto names = batch::MapOutputNames();
  names.push_back("shading");
  return names;
}

// --range A:B -> [begin, end) (end = -1: to the last row).
std::pair<int64_t, int64_t> ParseRange(const std::string& text) {
  if (text.empty()) return {0, -1};
  const auto colon = text.find(':');
  auto num = [&](const std::string& s, int64_t dflt) -> int64_t {
    if (s.empty()) return dflt;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || v < 0) throw UsageError("--range must be A:B with row numbers A < B (either may be empty), got '" + text + "'");
    return v;
  };
  if (colon == std::string::npos) throw UsageError("--range must be A:B (rows A..B-1), got '" + text + "'");
  const int64_t a = num(text.substr(0, colon), 0), b = num(text.substr(colon + 1), -1);
  if (b >= 0 && b <= a) throw UsageError("--range A:B needs A < B, got '" + text + "'");
  return {a, b};
}

std::vector<std::string> ParseIds(const std::string& text) {
  if (text.empty()) return {};
  if (text[0] != '@') return SplitComma(text);
  const std::string path = text.substr(1);
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open the --ids file");
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (!line.empty() && line[0] != '#') ids.push_back(line);
  }
  return ids;
}

// The maps `export maps` writes for one input (explicit names must exist: InputError).
std::vector<std::string> SelectMaps(const ExportOptions& o, const batch::ShardReader& r) {
  const bool has_shape = r.Has("/maps/shape") || r.Has("/vertices/model");
  std::vector<std::string> wanted = o.maps == "all" ? AllMapNames() : SplitComma(o.maps);
  std::vector<std::string> out;
  for (const auto& m : wanted) {
    if (m == "shading") {
      if (has_shape) {
        out.push_back(m);
      } else if (o.maps != "all") {
        throw InputError(r.path(), "has neither /maps/shape nor /vertices/model (the fit's --outputs left them out), "
                                   "which the shading map needs");
      }
      continue;
    }
    if (r.Has("/maps/" + m)) {
      out.push_back(m);
    } else if (o.maps != "all") {
      throw InputError(r.path(), fmt::format("has no dataset /maps/{} (the fit's --outputs was '{}'), which `export "
                                             "maps --maps {}` needs", m, r.header().string_attrs.count("outputs") ? r.header().string_attrs.at("outputs") : "?", o.maps));
    }
  }
  if (out.empty()) throw InputError(r.path(), "has no UV maps (/maps/*) to export (the fit ran with --outputs none?)");
  return out;
}

void Require(const batch::ShardReader& r, const std::string& dataset, const std::string& kind) {
  if (r.Has(dataset)) return;
  throw InputError(r.path(), fmt::format("has no dataset {} (the fit's --outputs left it out), which `export {}` needs",
                                         dataset, kind));
}

struct Input {
  std::unique_ptr<batch::ShardReader> reader;
  render::FaceTopology topology;
  at::Tensor mask;  // [U, V] bool
  std::vector<std::string> maps;
  int image_size = 224;
};

at::Tensor FloatTensor(std::vector<float> v, std::vector<int64_t> dims) {
  return torch::from_blob(v.data(), dims, torch::kFloat).clone();
}

bool AllFinite(const at::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

struct ImageData {
  std::string source;
  at::Tensor vertices;  // [N, 3] model space (undefined when absent)
  at::Tensor M, L, A;   // [2, 4], [27], [2, 3] float64
  std::map<std::string, at::Tensor> maps;  // name -> [3, U, V]
};

// HDF5 (Debian's serial build) is not thread-safe: every read, of any input, under one lock.
std::mutex g_hdf5_mutex;

ImageData ReadImage(Input& in, int64_t row, const std::set<std::string>& maps, bool vertices) {
  std::lock_guard<std::mutex> lock(g_hdf5_mutex);
  const auto& r = *in.reader;
  const auto& s = r.layout().sizes;
  ImageData d;
  d.source = r.String("/images/source", row);
  d.M = FloatTensor(r.Floats("/latents/projection", row), {2, 4});
  d.L = FloatTensor(r.Floats("/latents/lighting", row), {27});
  auto a = r.Doubles("/images/crop_to_original", row);
  d.A = torch::from_blob(a.data(), {2, 3}, torch::kDouble).clone();
  if (vertices && r.Has("/vertices/model")) d.vertices = FloatTensor(r.Floats("/vertices/model", row), {s.num_vertices, 3});
  for (const auto& m : maps)
    if (r.Has("/maps/" + m)) d.maps[m] = FloatTensor(r.Floats("/maps/" + m, row), {3, s.uv_rows, s.uv_cols});
  return d;
}

std::string NotFittedReason(const std::string& what, const std::string& fit_status) {
  return fit_status == "ok" ? what + " has non-finite values"
                            : fmt::format("no fitted values ({} is non-finite; the image's fit status is '{}')", what,
                                          fit_status);
}

at::Tensor CheckedMap(const ImageData& d, const std::string& name, const std::string& fit_status) {
  auto it = d.maps.find(name);
  if (it == d.maps.end()) throw Error("/maps/" + name + " was not read");
  if (!AllFinite(it->second)) throw Error(NotFittedReason("/maps/" + name, fit_status));
  return it->second;
}

at::Tensor ShapeVertices(const Input& in, const ImageData& d, const std::string& fit_status) {
  at::Tensor v = d.vertices.defined()
                     ? d.vertices
                     : render::VerticesFromUVMap(in.topology, CheckedMap(d, "shape", fit_status).unsqueeze(0))[0];
  if (!AllFinite(v)) throw Error(NotFittedReason("/vertices/model", fit_status));
  return v;
}

void CheckPose(const ImageData& d, const std::string& fit_status) {
  if (!AllFinite(d.M) || !AllFinite(d.L) || !AllFinite(d.A))
    throw Error(NotFittedReason("/latents/projection, /latents/lighting or /images/crop_to_original", fit_status));
}

std::string ResolveSource(const std::string& source, const std::string& shard_path) {
  fs::path p(source);
  if (p.is_absolute() || fs::exists(p)) return source;
  fs::path beside = fs::path(shard_path).parent_path() / p;
  return fs::exists(beside) ? beside.string() : source;
}

void ExportOne(const ExportOptions& o, Input& in, ExportItem& item, const std::string& stem) {
  const fs::path dir(o.out);
  const bool mesh = IsMesh(o.kind);
  std::set<std::string> maps;
  if (mesh || o.kind == "overlay") maps.insert(o.component);
  if (o.kind == "overlay") maps.insert("shape");
  if (o.kind == "maps") maps.insert(in.maps.begin(), in.maps.end()), maps.insert("shape");
  const ImageData d = ReadImage(in, item.row, maps, mesh || o.kind == "overlay" || o.kind == "maps");
  if (mesh) {
    at::Tensor v = ShapeVertices(in, d, item.fit_status);
    if (o.space == "image") {
      CheckPose(d, item.fit_status);
      v = ImageSpaceVertices(v, d.M, d.A);
    }
    // Files are listed before they are written, so that a failed item's are all removed.
    const std::string texture = stem + "." + o.component + ".png";
    const std::string file = stem + "." + o.kind;
    item.files.push_back(file);
    if (o.kind == "obj") item.files.push_back(stem + ".mtl");
    item.files.push_back(texture);
    WriteTexture((dir / texture).string(), CheckedMap(d, o.component, item.fit_status), in.mask);
    WriteMesh((dir / file).string(), o.kind, MakeMesh(in.topology, v), texture);
  } else if (o.kind == "maps") {
    for (const auto& name : in.maps) {
      at::Tensor map;
      if (name == "shading") {
        CheckPose(d, item.fit_status);
        at::Tensor shape = d.maps.count("shape") ? CheckedMap(d, "shape", item.fit_status)
                                                 : render::UVMapFromVertices(in.topology, ShapeVertices(in, d, item.fit_status).unsqueeze(0))[0];
        map = ShadingMap(in.topology, shape, d.M, d.L);
      } else {
        map = CheckedMap(d, name, item.fit_status);
      }
      if (o.map_format == "exr") {
        const std::string file = stem + "." + name + ".exr";
        item.files.push_back(file);
        WriteMapExr((dir / file).string(), map, in.mask);
      } else {
        const std::string file = stem + "." + name + ".png";
        item.files.push_back(file);
        item.ranges[name] = WriteMapPng16((dir / file).string(), name, map, in.mask);
      }
    }
  } else {  // overlay
    CheckPose(d, item.fit_status);
    OverlayInput oi;
    oi.shape_vertices = ShapeVertices(in, d, item.fit_status);
    oi.albedo_vertices =
        render::VerticesFromUVMap(in.topology, CheckedMap(d, o.component, item.fit_status).unsqueeze(0))[0];
    oi.M = d.M;
    oi.L = d.L;
    oi.crop_to_original = d.A;
    oi.image_size = in.image_size;
    oi.original = io::LoadImageBgr(ResolveSource(d.source, in.reader->path()));
    cv::Mat picture = MakeOverlay(in.topology, oi, o.overlay_max_size);
    const std::string file = stem + ".overlay.png";
    item.files.push_back(file);
    if (!cv::imwrite((dir / file).string(), picture))
      throw InputError((dir / file).string(), "cannot write PNG" + DiskDiagnosis((dir / file).string()));
  }
}

// export preview: inputs are mesh files.
ExportSummary RunPreview(const ExportOptions& o, std::chrono::steady_clock::time_point t0) {
  ExportSummary summary;
  cv::Mat beside;
  if (!o.beside.empty()) {
    beside = cv::imread(o.beside, cv::IMREAD_COLOR);
    if (beside.empty()) throw InputError(o.beside, "cannot read the --beside picture");
  }
  CheckWritableDirectory(o.out, "output directory");  // before any work starts
  std::map<std::string, int> taken;
  for (size_t k = 0; k < o.inputs.size(); ++k) {
    ExportItem item;
    item.id = o.inputs[k];
    item.input = static_cast<int>(k);
    item.row = -1;
    const std::string file = OutputStem(fs::path(o.inputs[k]).filename().string(), taken) + ".preview.png";
    try {
      cv::Mat pic = RenderMeshFile(o.inputs[k], o.preview_size, o.space == "image");
      if (!beside.empty()) {
        cv::Mat other;
        const double f = double(pic.rows) / beside.rows;
        cv::resize(beside, other, cv::Size(std::max(1, int(std::lround(beside.cols * f))), pic.rows), 0, 0,
                   f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
        cv::hconcat(pic, other, pic);
      }
      if (!cv::imwrite((fs::path(o.out) / file).string(), pic)) throw InputError((fs::path(o.out) / file).string(), "cannot write PNG");
      item.status = "exported";
      item.files.push_back(file);
      ++summary.exported;
    } catch (const std::exception& e) {
      item.status = "failed";
      item.reason = e.what();
      ++summary.failed;
    }
    summary.items.push_back(item);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

nlohmann::json ManifestJson(const ExportOptions& o, const std::vector<Input>& inputs, const ExportSummary& s) {
  nlohmann::json j;
  j["format"] = kExportFormat;
  j["schema_version"] = kExportSchemaVersion;
  j["facebatch_version"] = FACEBATCH_VERSION;
  j["kind"] = o.kind;
  j["command"] = o.command;
  j["options"] = {{"ids", o.ids}, {"status", o.status}, {"range", o.range}, {"space", o.space},
                  {"component", o.component}, {"maps", o.maps}, {"map_format", o.map_format},
                  {"overlay_max_size", o.overlay_max_size}};
  j["inputs"] = nlohmann::json::array();
  for (const auto& path : o.inputs) {
    if (inputs.empty()) j["inputs"].push_back({{"path", path}});
  }
  for (const auto& in : inputs) {
    const auto& attrs = in.reader->header().string_attrs;
    auto attr = [&](const char* k) { return attrs.count(k) ? attrs.at(k) : std::string(); };
    j["inputs"].push_back({{"path", in.reader->path()}, {"num_images", in.reader->size()},
                           {"model_sha256", attr("model_sha256")}, {"shard", attr("shard")}});
  }
  j["counts"] = {{"selected", s.items.size()}, {"exported", s.exported}, {"failed", s.failed}};
  j["items"] = nlohmann::json::array();
  for (const auto& it : s.items) {
    nlohmann::json e = {{"id", it.id}, {"input", it.input}, {"row", it.row}, {"fit_status", it.fit_status},
                        {"status", it.status}, {"files", it.files}};
    if (!it.reason.empty()) e["reason"] = it.reason;
    if (!it.ranges.empty()) {
      nlohmann::json ranges;
      for (const auto& [name, r] : it.ranges) {
        nlohmann::json mins = nlohmann::json::array(), maxs = nlohmann::json::array();
        for (const auto& c : r) mins.push_back(c[0]), maxs.push_back(c[1]);
        ranges[name] = {{"min", mins}, {"max", maxs}};
      }
      e["ranges"] = ranges;
    }
    j["items"].push_back(std::move(e));
  }
  return j;
}

void WriteManifest(const ExportOptions& o, const std::vector<Input>& inputs, ExportSummary& summary) {
  summary.manifest = (fs::path(o.out) / "export.json").string();
  const std::string tmp = summary.manifest + ".tmp";
  {
    std::ofstream f(tmp);
    f << ManifestJson(o, inputs, summary).dump(2) << "\n";
    f.close();
    if (!f) {
      const std::string why = DiskDiagnosis(tmp);
      std::error_code ec;
      fs::remove(tmp, ec);
      throw InputError(tmp, "cannot write the export manifest" + why);
    }
  }
  fs::rename(tmp, summary.manifest);
}

}  // namespace

void ExportOptions::Check() const {
  if (std::find(kKinds.begin(), kKinds.end(), kind) == kKinds.end())
    throw UsageError("export: the first argument must be obj, ply, glb, maps, overlay or preview (got '" + kind + "')");
  if (inputs.empty()) throw UsageError("export: give at least one shard or merged file (INPUT.h5)");
  if (out.empty()) throw UsageError("export: --out DIR is required");
  if (status != "ok" && status != "failed" && status != "all")
    throw UsageError("--status must be ok, failed or all (got '" + status + "')");
  if (space != "model" && space != "image") throw UsageError("--space must be model or image (got '" + space + "')");
  if (component != "albedo" && component != "albedo_proxy")
    throw UsageError("--component must be albedo or albedo_proxy (got '" + component + "')");
  if (map_format != "png16" && map_format != "exr")
    throw UsageError("--map-format must be png16 or exr (got '" + map_format + "')");
  if (maps != "all") {
    const auto names = AllMapNames();
    const auto list = SplitComma(maps);
    if (list.empty()) throw UsageError("--maps must be all or a comma list");
    for (const auto& m : list)
      if (std::find(names.begin(), names.end(), m) == names.end())
        throw UsageError("--maps: unknown map '" + m + "' (shape, shape_proxy, albedo, albedo_proxy, shape_residual, "
                         "albedo_residual, shading)");
  }
  if (threads < 0) throw UsageError("--threads must be >= 0");
  if (overlay_max_size < 0) throw UsageError("--overlay-max-size must be >= 0 (0: never scale)");
  if (preview_size < 16 || preview_size > 8192) throw UsageError("--preview-size must be in [16, 8192]");
  if (!beside.empty() && kind != "preview") throw UsageError("--beside applies to export preview only");
  ParseRange(range);
  ParseProgressMode(progress);
}

int ExportSummary::ExitCode() const { return failed > 0 ? kExitSomeFailed : kExitOk; }

std::string ExportSummary::ToString() const {
  std::string s = fmt::format("export: {} images exported, {} failed ({:.1f} s); manifest {}\n", exported, failed,
                              seconds, manifest);
  for (const auto& it : items)
    if (it.status != "exported") s += fmt::format("export: {} failed: {}\n", it.id, it.reason);
  return s;
}

std::string OutputStem(const std::string& id, std::map<std::string, int>& taken) {
  std::string s;
  for (char c : id) s.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_');
  if (s.empty()) s = "image";
  if (s[0] == '.') s[0] = '_';
  std::string stem = s;
  for (int k = 2; taken.count(stem); ++k) stem = fmt::format("{}-{}", s, k);
  taken[stem] = 1;
  return stem;
}

ExportSummary RunExport(const ExportOptions& o) {
  o.Check();
  const auto t0 = std::chrono::steady_clock::now();
  if (o.kind == "preview") {
    auto summary = RunPreview(o, t0);
    WriteManifest(o, {}, summary);
    return summary;
  }
  // Open every input and check up front that it has what this kind needs.
  std::vector<Input> inputs;
  for (const auto& path : o.inputs) {
    Input in;
    in.reader = std::make_unique<batch::ShardReader>(path);
    const auto& r = *in.reader;
    if (IsMesh(o.kind)) {
      Require(r, "/vertices/model", o.kind);
      Require(r, "/maps/" + o.component, o.kind);
    } else if (o.kind == "overlay") {
      if (!r.Has("/vertices/model")) Require(r, "/maps/shape", o.kind);
      Require(r, "/maps/" + o.component, o.kind);
    } else {
      in.maps = SelectMaps(o, r);
    }
    in.topology = TopologyOfShard(r);
    in.mask = in.topology.mask.to(torch::kBool);
    auto it = r.header().int_attrs.find("image_size");
    if (it != r.header().int_attrs.end()) in.image_size = static_cast<int>(it->second);
    inputs.push_back(std::move(in));
  }

  // Selection: rows of the inputs in order (global row numbers for --range).
  const auto [begin, end] = ParseRange(o.range);
  const auto ids = ParseIds(o.ids);
  std::set<std::string> wanted(ids.begin(), ids.end());
  ExportSummary summary;
  std::set<std::string> found;
  int64_t global = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const auto& r = *inputs[k].reader;
    for (int64_t row = 0; row < r.size(); ++row, ++global) {
      if (global < begin || (end >= 0 && global >= end)) continue;
      const auto& id = r.ids()[static_cast<size_t>(row)];
      if (!wanted.empty() && !wanted.count(id)) continue;
      const auto& st = r.status(row);
      if (o.status != "all" && st != o.status) continue;
      if (!found.insert(id).second) {
        log::Warn("export: {} appears again in {} (row {}); exported once", id, r.path(), row);
        continue;
      }
      ExportItem item;
      item.id = id;
      item.input = static_cast<int>(k);
      item.row = row;
      item.fit_status = st;
      summary.items.push_back(item);
    }
  }
  for (const auto& id : ids) {
    if (found.count(id)) continue;
    ExportItem item;
    item.id = id;
    item.input = -1;
    item.row = -1;
    item.status = "failed";
    item.reason = "id not selected: not in the inputs, or excluded by --status/--range";
    summary.items.push_back(item);
    found.insert(id);
  }

  CheckWritableDirectory(o.out, "output directory");  // before any work starts
  std::map<std::string, int> taken;
  std::vector<std::string> stems;
  for (const auto& it : summary.items) stems.push_back(OutputStem(it.id, taken));

  const int threads = env::ConfigureThreads(o.threads);
  const int torch_threads_before = at::get_num_threads();
  at::set_num_threads(1);  // parallel over images, not inside one image's small tensor ops
  struct Restore {
    int n;
    ~Restore() { at::set_num_threads(n); }
  } restore{torch_threads_before};
  log::Info("export {}: {} images from {} input file(s) into {} ({} threads)", o.kind, summary.items.size(),
            inputs.size(), o.out, threads);
  Progress progress("export " + o.kind, static_cast<int64_t>(summary.items.size()), ParseProgressMode(o.progress),
                    "images");
  tbb::parallel_for(size_t(0), summary.items.size(), [&](size_t i) {
    auto& item = summary.items[i];
    if (item.input < 0) {
      progress.Add(1, 1);
      return;
    }
    try {
      ExportOne(o, inputs[static_cast<size_t>(item.input)], item, stems[i]);
      item.status = "exported";
      progress.Add(1, 0);
    } catch (const std::exception& e) {
      item.status = "failed";
      item.reason = e.what();
      // A write that failed for a full or read-only disk says so (before the removal frees space).
      const std::string why = DiskDiagnosis(o.out);
      if (!why.empty() && item.reason.find(why) == std::string::npos) item.reason += why;
      for (const auto& f : item.files) {
        std::error_code ec;
        fs::remove(fs::path(o.out) / f, ec);
      }
      item.files.clear();
      item.ranges.clear();
      progress.Add(1, 1);
    }
  }, tbb::simple_partitioner());
  progress.Finish();
  for (const auto& it : summary.items) (it.status == "exported" ? summary.exported : summary.failed)++;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& it : summary.items)  // before the manifest, which a full disk may refuse
    if (it.status != "exported") log::Warn("export: {} failed: {}", it.id, it.reason);
  WriteManifest(o, inputs, summary);
  return summary;
}

}  // namespace facebatch::exporter
