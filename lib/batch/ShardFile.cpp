#include "batch/ShardFile.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "core/Error.h"

namespace facebatch::batch {
namespace {

using io::hdf5::DType;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

bool IsFloat(DType k) { return k == DType::kFloat32 || k == DType::kFloat16; }

void WriteHeader(io::hdf5::RowWriter& w, const ShardHeader& h, const ShardLayout& layout, int64_t n) {
  w.Attr("/", "format", std::string(kShardFormat));
  w.Attr("/", "schema_version", static_cast<int64_t>(kShardSchemaVersion));
  w.Attr("/", "num_images", n);
  const auto& s = layout.sizes;
  w.Attr("/", "latent_shape", s.latent_shape);
  w.Attr("/", "latent_albedo", s.latent_albedo);
  w.Attr("/", "uv_rows", s.uv_rows);
  w.Attr("/", "uv_cols", s.uv_cols);
  w.Attr("/", "num_vertices", s.num_vertices);
  w.Attr("/", "num_triangles", s.num_triangles);
  w.Attr("/", "fit_terms", Join(s.terms));
  w.Attr("/", "outputs", Join(std::vector<std::string>(layout.outputs.begin(), layout.outputs.end())));
  w.Attr("/", "dtype", std::string(layout.half ? "float16" : "float32"));
  for (const auto& [k, v] : h.string_attrs) w.Attr("/", k, v);
  for (const auto& [k, v] : h.int_attrs) w.Attr("/", k, v);
  w.Group("/topology");
  w.Create("/topology/triangles", DType::kInt64, {s.num_triangles, 3}, false);
  w.WriteRows("/topology/triangles", 0, s.num_triangles, h.triangles.data());
  w.Create("/topology/vertex_uv", DType::kFloat32, {s.num_vertices, 2}, false);
  w.WriteRows("/topology/vertex_uv", 0, s.num_vertices, h.vertex_uv.data());
  w.Create("/topology/landmarks68", DType::kInt64, {68}, false);
  w.WriteRows("/topology/landmarks68", 0, 68, h.landmarks68.data());
  std::vector<uint8_t> mask(h.mask.begin(), h.mask.end());
  w.Create("/topology/mask", DType::kUInt8, {s.uv_rows, s.uv_cols}, false);
  w.WriteRows("/topology/mask", 0, s.uv_rows, mask.data());
  for (const auto& f : layout.fields) {
    std::vector<int64_t> dims{n};
    dims.insert(dims.end(), f.dims.begin(), f.dims.end());
    w.Create(f.path, f.dtype, dims, true);
  }
}

void WriteRecord(io::hdf5::RowWriter& w, const ShardLayout& layout, const ImageRecord& r, int64_t row) {
  for (const auto& f : layout.fields) {
    const int64_t size = f.size();
    if (f.dtype == DType::kString) {
      auto it = r.strings.find(f.path);
      w.WriteStrings(f.path, row, {it == r.strings.end() ? std::string() : it->second});
    } else if (IsFloat(f.dtype)) {
      auto it = r.floats.find(f.path);
      std::vector<float> v(size, std::numeric_limits<float>::quiet_NaN());
      if (it != r.floats.end()) {
        if (static_cast<int64_t>(it->second.size()) != size)
          throw Error(fmt::format("shard record {}: {} has {} values, expected {}", r.id, f.path, it->second.size(), size));
        v = it->second;
      }
      w.WriteRows(f.path, row, 1, v.data());
    } else if (f.dtype == DType::kFloat64) {
      auto it = r.doubles.find(f.path);
      std::vector<double> v(size, std::numeric_limits<double>::quiet_NaN());
      if (it != r.doubles.end()) {
        if (static_cast<int64_t>(it->second.size()) != size)
          throw Error(fmt::format("shard record {}: {} has {} values, expected {}", r.id, f.path, it->second.size(), size));
        v = it->second;
      }
      w.WriteRows(f.path, row, 1, v.data());
    } else {
      auto it = r.ints.find(f.path);
      std::vector<int64_t> v(size, 0);
      if (it != r.ints.end() && static_cast<int64_t>(it->second.size()) == size) v = it->second;
      if (f.dtype == DType::kUInt8) {
        std::vector<uint8_t> u(v.begin(), v.end());
        w.WriteRows(f.path, row, 1, u.data());
      } else {
        w.WriteRows(f.path, row, 1, v.data());
      }
    }
  }
}

}  // namespace

int64_t FieldSpec::size() const {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

const std::vector<std::string>& MapOutputNames() {
  static const std::vector<std::string> names = {"shape",          "shape_proxy",    "albedo", "albedo_proxy",
                                                 "shape_residual", "albedo_residual"};
  return names;
}

std::set<std::string> ParseOutputs(const std::string& text) {
  std::set<std::string> all(MapOutputNames().begin(), MapOutputNames().end());
  all.insert("vertices");
  if (text == "all") return all;
  std::set<std::string> out;
  if (text == "none") return out;
  for (const auto& p : Split(text)) {
    if (!all.count(p)) {
      throw UsageError(fmt::format("--outputs: unknown output '{}' (expected all, none, or a comma list of "
                                   "shape, shape_proxy, albedo, albedo_proxy, shape_residual, albedo_residual, vertices)",
                                   p));
    }
    out.insert(p);
  }
  return out;
}

ShardLayout ShardLayout::Make(const LayoutSizes& s, const std::set<std::string>& outputs, bool half) {
  ShardLayout l;
  l.sizes = s;
  l.outputs = outputs;
  l.half = half;
  auto add = [&](std::string path, DType dtype, std::vector<int64_t> dims, std::string desc) {
    l.fields.push_back({std::move(path), dtype, std::move(dims), std::move(desc)});
  };
  const DType big = half ? DType::kFloat16 : DType::kFloat32;
  const int64_t T = static_cast<int64_t>(s.terms.size());
  add("/images/id", DType::kString, {}, "manifest item id");
  add("/images/source", DType::kString, {}, "image path (corpus root joined with the item's image)");
  add("/images/status", DType::kString, {}, "ok | failed");
  add("/images/reason_code", DType::kString, {}, "machine-readable failure reason ('' when ok)");
  add("/images/reason", DType::kString, {}, "human-readable failure message ('' when ok)");
  add("/images/crop_to_original", DType::kFloat64, {2, 3}, "2x3 similarity mapping model-image pixels to original pixels");
  add("/latents/f_shape", DType::kFloat32, {s.latent_shape}, "f_S");
  add("/latents/f_albedo", DType::kFloat32, {s.latent_albedo}, "f_A");
  add("/latents/projection", DType::kFloat32, {2, 4}, "M (model-image pixels)");
  add("/latents/lighting", DType::kFloat32, {27}, "L, [R0..R8, G0..G8, B0..B8]");
  add("/pose/angles", DType::kFloat32, {3}, "yaw, pitch, roll in radians (R = Rz(roll) Ry(yaw) Rx(pitch))");
  add("/pose/scale", DType::kFloat32, {}, "weak-perspective scale (model-image pixels per model unit)");
  add("/pose/translation", DType::kFloat32, {2}, "M[:, 3] (model-image pixels)");
  for (const auto& m : MapOutputNames()) {
    if (outputs.count(m)) add("/maps/" + m, big, {3, s.uv_rows, s.uv_cols}, "UV map [3, U, V]");
  }
  if (outputs.count("vertices")) {
    add("/vertices/model", big, {s.num_vertices, 3}, "shape vertices in model space");
    add("/vertices/image", big, {s.num_vertices, 2}, "vertices projected into the ORIGINAL image (pixels)");
  }
  add("/fit/termination", DType::kString, {}, "converged | max_iterations | no_iterations | diverged | non_finite");
  add("/fit/message", DType::kString, {}, "fit summary message");
  add("/fit/iterations", DType::kInt64, {}, "optimiser updates applied");
  add("/fit/best_iteration", DType::kInt64, {}, "update count of the returned state");
  add("/fit/step_reductions", DType::kInt64, {}, "divergence recoveries");
  add("/fit/seconds", DType::kFloat64, {}, "wall time of the image's batch");
  add("/fit/initial_loss", DType::kFloat64, {}, "weighted total at the encoder estimate");
  add("/fit/final_loss", DType::kFloat64, {}, "weighted total of the returned state");
  add("/fit/initial_terms", DType::kFloat64, {T}, "unweighted terms (names: root attribute fit_terms)");
  add("/fit/final_terms", DType::kFloat64, {T}, "unweighted terms of the returned state");
  add("/metrics/photometric_l21", DType::kFloat32, {}, "Table 1 metric: eq. 4 l2,1 error of I(S, A) over covered pixels, on sRGB pixel values in [0, 1]");
  add("/metrics/landmark_error_px", DType::kFloat32, {}, "mean landmark distance in original-image pixels");
  return l;
}

const FieldSpec* ShardLayout::Find(const std::string& path) const {
  for (const auto& f : fields) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

void WriteShardFile(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                    const std::vector<ImageRecord>& records) {
  io::hdf5::RowWriter w(path);
  WriteHeader(w, header, layout, static_cast<int64_t>(records.size()));
  for (size_t i = 0; i < records.size(); ++i) WriteRecord(w, layout, records[i], static_cast<int64_t>(i));
  w.Close();
}

ShardConsolidation::ShardConsolidation(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                                       std::map<std::string, int64_t> order, bool copy_chunks)
    : path_(path), layout_(layout), order_(std::move(order)), added_(order_.size(), false), copy_chunks_(copy_chunks) {
  writer_ = std::make_unique<io::hdf5::RowWriter>(path);
  WriteHeader(*writer_, header, layout, static_cast<int64_t>(order_.size()));
}

ShardConsolidation::~ShardConsolidation() = default;

void ShardConsolidation::Add(const std::string& part) {
  if (!writer_) throw Error("ShardConsolidation::Add: " + path_ + " is already closed");
  io::hdf5::RowReader r(part);
  std::vector<int64_t> rows;
  std::vector<bool> in_part(order_.size(), false);
  for (const auto& id : r.Read("/images/id").strings) {
    auto it = order_.find(id);
    if (it == order_.end()) throw InputError(part, "image '" + id + "' is not in this shard");
    const auto row = static_cast<size_t>(it->second);
    if (added_[row] || in_part[row]) throw InputError(part, "image '" + id + "' is also in another part or twice in this one");
    in_part[row] = true;
    rows.push_back(it->second);
  }
  auto& w = *writer_;
  for (const auto& f : layout_.fields) {
    // The part's compressed chunks are copied as they are (no decompression and recompression:
    // the bulk of the cost); only strings and unexpected layouts go through memory.
    if (f.dtype != DType::kString) {
      const auto info = r.Describe(f.path);
      int64_t row_size = 1;
      for (size_t i = 1; i < info.dims.size(); ++i) row_size *= info.dims[i];
      if (info.dims.empty() || info.dims[0] != static_cast<int64_t>(rows.size()) || row_size != f.size())
        throw InputError(part, f.path + ": unexpected dims");
      if (copy_chunks_ && w.CopyRowChunks(r, f.path, rows)) continue;
    }
    auto d = r.Read(f.path);
    if (d.rows() != static_cast<int64_t>(rows.size()) || d.row_size() != f.size())
      throw InputError(part, f.path + ": unexpected dims");
    const int64_t k = f.size();
    for (size_t i = 0; i < rows.size(); ++i) {
      if (f.dtype == DType::kString) {
        // A run of consecutive shard rows in one write.
        size_t j = i;
        while (j + 1 < rows.size() && rows[j + 1] == rows[j] + 1) ++j;
        w.WriteStrings(f.path, rows[i], std::vector<std::string>(d.strings.begin() + i, d.strings.begin() + j + 1));
        i = j;
      } else if (IsFloat(f.dtype)) {
        w.WriteRows(f.path, rows[i], 1, d.f32.data() + i * k);
      } else if (f.dtype == DType::kFloat64) {
        w.WriteRows(f.path, rows[i], 1, d.f64.data() + i * k);
      } else if (f.dtype == DType::kUInt8) {
        std::vector<uint8_t> u(d.i64.begin() + i * k, d.i64.begin() + (i + 1) * k);
        w.WriteRows(f.path, rows[i], 1, u.data());
      } else {
        w.WriteRows(f.path, rows[i], 1, d.i64.data() + i * k);
      }
    }
  }
  for (int64_t row : rows) added_[static_cast<size_t>(row)] = true;
  rows_added_ += static_cast<int64_t>(rows.size());
}

void ShardConsolidation::Close() {
  if (!writer_) return;
  if (rows_added_ != rows())
    throw Error("ShardConsolidation::Close: " + path_ + ": " + std::to_string(rows_added_) + " of " +
                std::to_string(rows()) + " images added");
  writer_->Close();
  writer_.reset();
}

void ConsolidateShardFiles(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                           const std::vector<std::string>& parts, const std::map<std::string, int64_t>& order,
                           bool copy_chunks) {
  ShardConsolidation consolidation(path, header, layout, order, copy_chunks);
  for (const auto& part : parts) consolidation.Add(part);
  consolidation.Close();
}

std::vector<std::string> ReadShardIds(const std::string& path) {
  io::hdf5::RowReader r(path);
  return r.Read("/images/id").strings;
}

ShardLayout LayoutOfFile(const io::hdf5::RowReader& r) {
  LayoutSizes s;
  s.latent_shape = r.IntAttr("/", "latent_shape");
  s.latent_albedo = r.IntAttr("/", "latent_albedo");
  s.uv_rows = r.IntAttr("/", "uv_rows");
  s.uv_cols = r.IntAttr("/", "uv_cols");
  s.num_vertices = r.IntAttr("/", "num_vertices");
  s.num_triangles = r.IntAttr("/", "num_triangles");
  s.terms = Split(r.StringAttr("/", "fit_terms"));
  auto outputs_text = r.StringAttr("/", "outputs");
  auto dtype = r.StringAttr("/", "dtype");
  if (dtype != "float32" && dtype != "float16") throw InputError(r.path(), "unknown dtype attribute '" + dtype + "'");
  std::set<std::string> outputs;
  for (const auto& o : Split(outputs_text)) outputs.insert(o);
  return ShardLayout::Make(s, outputs, dtype == "float16");
}

}  // namespace facebatch::batch
