#include "batch/ShardReader.h"

#include <fmt/format.h>

#include "core/Error.h"

namespace facebatch::batch {
namespace {
const std::set<std::string> kLayoutAttrs = {"format", "schema_version", "num_images", "latent_shape",
                                            "latent_albedo", "uv_rows", "uv_cols", "num_vertices",
                                            "num_triangles", "fit_terms", "outputs", "dtype"};
}  // namespace

ShardReader::ShardReader(const std::string& path) : reader_(std::make_unique<h5::Reader>(path)) {
  const auto& r = *reader_;
  const std::string format = r.HasAttr("/", "format") ? r.StringAttr("/", "format") : "";
  if (format != kShardFormat) {
    throw InputError(path, fmt::format("not a facebatch shard file (root attribute format is '{}', expected '{}')",
                                       format, kShardFormat));
  }
  const int64_t version = r.IntAttr("/", "schema_version");
  if (version != kShardSchemaVersion) {
    throw InputError(path, fmt::format("shard schema version {} is not supported (this build reads {})", version,
                                       kShardSchemaVersion));
  }
  layout_ = LayoutOfFile(r);
  ids_ = r.Read("/images/id").strings;
  statuses_ = r.Read("/images/status").strings;
  if (statuses_.size() != ids_.size()) throw InputError(path, "/images/status and /images/id differ in length");
  const int64_t n = r.IntAttr("/", "num_images");
  if (n != size()) throw InputError(path, fmt::format("num_images says {} but /images/id has {} rows", n, size()));
  for (const auto& name : r.AttrNames("/")) {
    if (kLayoutAttrs.count(name)) continue;
    if (r.IsStringAttr("/", name)) {
      header_.string_attrs[name] = r.StringAttr("/", name);
    } else {
      header_.int_attrs[name] = r.IntAttr("/", name);
    }
  }
  header_.triangles = r.Read("/topology/triangles").i64;
  header_.vertex_uv = r.Read("/topology/vertex_uv").f32;
  header_.landmarks68 = r.Read("/topology/landmarks68").i64;
  if (r.Exists("/topology/mask")) header_.mask = r.Read("/topology/mask").i64;
}

ShardReader::~ShardReader() = default;

const std::string& ShardReader::path() const { return reader_->path(); }

int64_t ShardReader::Find(const std::string& id) const {
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (ids_[i] == id) return static_cast<int64_t>(i);
  }
  return -1;
}

bool ShardReader::Has(const std::string& field) const { return layout_.Find(field) != nullptr; }

const FieldSpec& ShardReader::Spec(const std::string& field) const {
  const FieldSpec* f = layout_.Find(field);
  if (!f) throw InputError(path(), "has no dataset " + field + " (written with --outputs that left it out?)");
  return *f;
}

std::vector<float> ShardReader::Floats(const std::string& field, int64_t row) const {
  const auto& f = Spec(field);
  if (f.kind != h5::Kind::kFloat32 && f.kind != h5::Kind::kFloat16) throw Error(field + " is not a float32/float16 field");
  return reader_->ReadRows(field, row, 1).f32;
}

std::vector<double> ShardReader::Doubles(const std::string& field, int64_t row) const {
  if (Spec(field).kind != h5::Kind::kFloat64) throw Error(field + " is not a float64 field");
  return reader_->ReadRows(field, row, 1).f64;
}

std::vector<int64_t> ShardReader::Ints(const std::string& field, int64_t row) const {
  const auto& f = Spec(field);
  if (f.kind != h5::Kind::kInt64 && f.kind != h5::Kind::kUInt8) throw Error(field + " is not an integer field");
  return reader_->ReadRows(field, row, 1).i64;
}

std::string ShardReader::String(const std::string& field, int64_t row) const {
  if (Spec(field).kind != h5::Kind::kString) throw Error(field + " is not a string field");
  return reader_->ReadRows(field, row, 1).strings.at(0);
}

std::vector<std::string> ShardReader::Strings(const std::string& field) const {
  if (Spec(field).kind != h5::Kind::kString) throw Error(field + " is not a string field");
  return reader_->Read(field).strings;
}

ImageRecord ShardReader::Read(int64_t row, const std::set<std::string>& fields) const {
  ImageRecord rec;
  rec.id = ids_.at(static_cast<size_t>(row));
  rec.position = row;
  for (const auto& f : layout_.fields) {
    if (!fields.empty() && !fields.count(f.path)) continue;
    auto d = reader_->ReadRows(f.path, row, 1);
    switch (f.kind) {
      case h5::Kind::kFloat32:
      case h5::Kind::kFloat16: rec.floats[f.path] = std::move(d.f32); break;
      case h5::Kind::kFloat64: rec.doubles[f.path] = std::move(d.f64); break;
      case h5::Kind::kInt64:
      case h5::Kind::kUInt8: rec.ints[f.path] = std::move(d.i64); break;
      case h5::Kind::kString: rec.strings[f.path] = d.strings.at(0); break;
    }
  }
  return rec;
}

}  // namespace facebatch::batch
