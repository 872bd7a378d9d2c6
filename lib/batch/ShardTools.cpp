#include "batch/ShardTools.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "batch/ShardFile.h"
#include "core/Error.h"
#include "io/Hdf5.h"
#include "io/Hdf5Rows.h"
#include "io/Manifest.h"
#include "model/ModelCommands.h"

namespace facebatch::batch {
namespace fs = std::filesystem;

void ValidateOptions::Check() const {
  if (file.empty()) throw UsageError("validate: a shard file is required");
}
void InspectOptions::Check() const {
  if (file.empty()) throw UsageError("inspect: a file is required");
}

std::string ValidationReport::ToString() const {
  if (ok()) return fmt::format("{}: valid facebatch shard (schema {}), {} images\n", file, kShardSchemaVersion, num_images);
  std::string s = fmt::format("{}: INVALID ({} problem(s))\n", file, problems.size());
  for (const auto& p : problems) s += "  - " + p + "\n";
  return s;
}

ValidationReport RunValidate(const ValidateOptions& o) {
  o.Check();
  ValidationReport rep;
  rep.file = o.file;
  auto& P = rep.problems;
  try {
    io::hdf5::RowReader r(o.file);
    if (!r.HasAttr("/", "format") || r.StringAttr("/", "format") != kShardFormat) {
      P.push_back("root attribute format is not '" + std::string(kShardFormat) + "'");
      return rep;
    }
    const int64_t version = r.HasAttr("/", "schema_version") ? r.IntAttr("/", "schema_version") : -1;
    if (version != kShardSchemaVersion) {
      P.push_back(fmt::format("unknown schema_version {} (this build reads {})", version, kShardSchemaVersion));
      return rep;
    }
    for (const char* a : {"facebatch_version", "model_sha256", "model_provenance", "config", "shard", "manifest_hash",
                          "outputs", "dtype", "fit_terms"}) {
      if (!r.HasAttr("/", a)) P.push_back(std::string("missing root attribute ") + a);
    }
    for (const char* a : {"num_images", "shard_index", "shard_count", "latent_shape", "latent_albedo", "uv_rows",
                          "uv_cols", "num_vertices", "num_triangles", "image_size"}) {
      if (!r.HasAttr("/", a)) P.push_back(std::string("missing root attribute ") + a);
    }
    if (!P.empty()) return rep;
    const int64_t n = r.IntAttr("/", "num_images");
    rep.num_images = n;
    const auto layout = LayoutOfFile(r);
    const auto& s = layout.sizes;
    // A merged file of virtual datasets (schemas/merge.md) has no chunks or filters of
    // its own: its sources are the shard files, each checked by validating it.
    const bool virtual_merge = r.HasAttr("/", "merged_storage") && r.StringAttr("/", "merged_storage") == "virtual";
    auto check_fixed = [&](const std::string& path, std::vector<int64_t> dims) {
      if (!r.Exists(path)) return P.push_back("missing dataset " + path);
      auto info = r.Describe(path);
      if (info.dims != dims) P.push_back(fmt::format("{}: dims {} expected {}", path, fmt::join(info.dims, "x"), fmt::join(dims, "x")));
    };
    check_fixed("/topology/triangles", {s.num_triangles, 3});
    check_fixed("/topology/vertex_uv", {s.num_vertices, 2});
    check_fixed("/topology/landmarks68", {68});
    check_fixed("/topology/mask", {s.uv_rows, s.uv_cols});
    for (const auto& f : layout.fields) {
      if (!r.Exists(f.path)) {
        P.push_back("missing dataset " + f.path);
        continue;
      }
      auto info = r.Describe(f.path);
      std::vector<int64_t> dims{n};
      dims.insert(dims.end(), f.dims.begin(), f.dims.end());
      if (info.dims != dims) P.push_back(fmt::format("{}: dims {} expected {}", f.path, fmt::join(info.dims, "x"), fmt::join(dims, "x")));
      if (info.dtype != f.dtype)
        P.push_back(fmt::format("{}: element type {} expected {}", f.path, io::hdf5::DTypeName(info.dtype),
                                io::hdf5::DTypeName(f.dtype)));
      if (virtual_merge) continue;
      if (!info.chunked || info.chunk.empty() || info.chunk[0] != 1) P.push_back(f.path + ": not chunked one image per chunk");
      if (!info.shuffle || !info.deflate) P.push_back(f.path + ": missing shuffle + deflate filters");
    }
    if (!P.empty()) return rep;
    auto ids = r.Read("/images/id").strings;
    std::set<std::string> unique(ids.begin(), ids.end());
    if (unique.size() != ids.size()) P.push_back("duplicate ids in /images/id");
    auto status = r.Read("/images/status").strings;
    auto codes = r.Read("/images/reason_code").strings;
    auto fs_ = r.Read("/latents/f_shape");
    for (int64_t i = 0; i < n; ++i) {
      if (status[i] != "ok" && status[i] != "failed") P.push_back(fmt::format("image {}: bad status '{}'", i, status[i]));
      if (status[i] == "failed" && codes[i].empty()) P.push_back(fmt::format("image {} ({}): failed without a reason_code", i, ids[i]));
      if (status[i] == "ok") {
        for (int64_t k = 0; k < fs_.row_size(); ++k) {
          if (!std::isfinite(fs_.f32[i * fs_.row_size() + k])) {
            P.push_back(fmt::format("image {} ({}): status ok but f_shape is not finite", i, ids[i]));
            break;
          }
        }
      }
    }
  } catch (const std::exception& e) {
    P.push_back(e.what());
  }
  return rep;
}

namespace {

std::string CountsText(const std::map<std::string, int64_t>& counts) {
  std::string s;
  for (const auto& [k, v] : counts) s += fmt::format("  {:<28} {}\n", k, v);
  return s;
}

}  // namespace

InspectSummary RunInspect(const InspectOptions& o) {
  o.Check();
  if (!fs::exists(o.file)) throw InputError(o.file, "no such file");
  InspectSummary out;
  if (io::hdf5::IsHdf5(o.file)) {
    io::hdf5::RowReader r(o.file);
    const std::string format = r.HasAttr("/", "format") ? r.StringAttr("/", "format") : "";
    if (format == kShardFormat) {
      out.kind = "shard";
      const int64_t version = r.IntAttr("/", "schema_version");
      if (version != kShardSchemaVersion)
        throw InputError(o.file, fmt::format("shard schema version {} is not supported (this build reads {})", version, kShardSchemaVersion));
      auto status = r.Read("/images/status").strings;
      auto codes = r.Read("/images/reason_code").strings;
      auto term = r.Read("/fit/termination").strings;
      out.counts["total"] = static_cast<int64_t>(status.size());
      for (size_t i = 0; i < status.size(); ++i) {
        ++out.counts[status[i]];
        if (status[i] != "ok") ++out.counts["failed:" + codes[i]];
        if (!term[i].empty()) ++out.counts["termination:" + term[i]];
      }
      auto photo = r.Read("/metrics/photometric_l21").f32;
      double sum = 0;
      int cnt = 0;
      for (size_t i = 0; i < photo.size(); ++i) {
        if (status[i] == "ok" && std::isfinite(photo[i])) sum += photo[i], ++cnt;
      }
      out.text = fmt::format(
          "{}: facebatch shard, schema version {}\n  shard {}  manifest {}\n  model {} ({})\n  outputs {} ({})\n"
          "  facebatch {}\n  mean photometric l2,1 (ok images): {}\ncounts:\n{}configuration:\n{}\n",
          o.file, version, r.StringAttr("/", "shard"), r.StringAttr("/", "manifest_hash"),
          r.StringAttr("/", "model_sha256"), r.StringAttr("/", "model_path"), r.StringAttr("/", "outputs"),
          r.StringAttr("/", "dtype"), r.StringAttr("/", "facebatch_version"),
          cnt ? fmt::format("{:.5f}", sum / cnt) : std::string("n/a"), CountsText(out.counts),
          r.StringAttr("/", "config"));
      return out;
    }
    if (format == model::kModelFormat) {
      out.kind = "model";
      model::ModelInfoOptions mo;
      mo.path = o.file;
      out.text = model::RunModelInfo(mo).text;
      return out;
    }
    throw InputError(o.file, "an HDF5 file that is neither a facebatch shard nor a model (format '" + format + "')");
  }
  std::ifstream in(o.file);
  std::string first;
  std::getline(in, first);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(first);
  } catch (const std::exception&) {
  }
  if (j.is_object() && j.value("format", "") == io::kManifestFormat) {
    out.kind = "manifest";
    auto m = io::ReadManifest(o.file);
    out.counts = io::CountItems(m.items);
    out.text = fmt::format("{}: facebatch manifest, version {}\n  corpus {}  root {}\n  items_hash {}\ncounts:\n{}", o.file,
                           m.header.version, m.header.corpus, m.header.root, m.header.items_hash, CountsText(out.counts));
    return out;
  }
  // A completion marker is pretty-printed JSON: parse the whole file.
  in.clear();
  in.seekg(0);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    j = nlohmann::json::parse(all);
  } catch (const std::exception&) {
  }
  if (j.is_object() && j.value("format", "") == "facebatch-shard-done") {
    out.kind = "marker";
    for (auto& [k, v] : j["counts"].items()) out.counts[k] = v.get<int64_t>();
    out.text = fmt::format("{}: completion marker of {} ({} images, ids {})\ncounts:\n{}", o.file,
                           j.value("file", ""), j.value("num_images", 0), j.value("ids_hash", ""), CountsText(out.counts));
    return out;
  }
  throw InputError(o.file, "not a shard, manifest, marker or model file");
}

}  // namespace facebatch::batch
