#include "batch/ShardReader.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/Error.h"

namespace facebatch::batch {
using io::hdf5::DType;

namespace {
const std::set<std::string> kLayoutAttrs = {"format", "schema_version", "num_images", "latent_shape",
                                            "latent_albedo", "uv_rows", "uv_cols", "num_vertices",
                                            "num_triangles", "fit_terms", "outputs", "dtype"};
}  // namespace

ShardReader::ShardReader(const std::string& path) : reader_(std::make_unique<io::hdf5::RowReader>(path)) {
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
  if (f.dtype != DType::kFloat32 && f.dtype != DType::kFloat16) throw Error(field + " is not a float32/float16 field");
  return reader_->ReadRows(field, row, 1).f32;
}

std::vector<double> ShardReader::Doubles(const std::string& field, int64_t row) const {
  if (Spec(field).dtype != DType::kFloat64) throw Error(field + " is not a float64 field");
  return reader_->ReadRows(field, row, 1).f64;
}

std::vector<int64_t> ShardReader::Ints(const std::string& field, int64_t row) const {
  const auto& f = Spec(field);
  if (f.dtype != DType::kInt64 && f.dtype != DType::kUInt8) throw Error(field + " is not an integer field");
  return reader_->ReadRows(field, row, 1).i64;
}

std::string ShardReader::String(const std::string& field, int64_t row) const {
  if (Spec(field).dtype != DType::kString) throw Error(field + " is not a string field");
  return reader_->ReadRows(field, row, 1).strings.at(0);
}

std::vector<std::string> ShardReader::Strings(const std::string& field) const {
  if (Spec(field).dtype != DType::kString) throw Error(field + " is not a string field");
  return reader_->Read(field).strings;
}

ImageRecord ShardReader::Read(int64_t row, const std::set<std::string>& fields) const {
  ImageRecord rec;
  rec.id = ids_.at(static_cast<size_t>(row));
  rec.position = row;
  for (const auto& f : layout_.fields) {
    if (!fields.empty() && !fields.count(f.path)) continue;
    auto d = reader_->ReadRows(f.path, row, 1);
    switch (f.dtype) {
      case DType::kFloat32:
      case DType::kFloat16: rec.floats[f.path] = std::move(d.f32); break;
      case DType::kFloat64: rec.doubles[f.path] = std::move(d.f64); break;
      case DType::kInt32:
      case DType::kInt64:
      case DType::kUInt8: rec.ints[f.path] = std::move(d.i64); break;
      case DType::kString: rec.strings[f.path] = d.strings.at(0); break;
    }
  }
  return rec;
}

render::FaceTopology TopologyOfShard(const ShardReader& shard) {
  const auto& h = shard.header();
  const auto& s = shard.layout().sizes;
  const int64_t U = s.uv_rows, V = s.uv_cols;
  if (U <= 0 || V <= 0 || static_cast<int64_t>(h.mask.size()) != U * V)
    throw InputError(shard.path(), fmt::format("/topology/mask has {} values, expected uv_rows x uv_cols = {} x {}",
                                               h.mask.size(), U, V));
  std::vector<int64_t> pixel_of_vertex;
  for (int64_t p = 0; p < U * V; ++p)
    if (h.mask[static_cast<size_t>(p)]) pixel_of_vertex.push_back(p);
  if (h.landmarks68.size() != 68) throw InputError(shard.path(), "/topology/landmarks68 must have 68 entries");
  auto lm_uv = torch::zeros({68, 2}, torch::kFloat);
  for (int k = 0; k < 68; ++k) {
    const int64_t v = h.landmarks68[static_cast<size_t>(k)];
    if (v < 0 || v >= static_cast<int64_t>(pixel_of_vertex.size()))
      throw InputError(shard.path(), fmt::format("/topology/landmarks68[{}] = {} is not a vertex", k, v));
    const int64_t p = pixel_of_vertex[static_cast<size_t>(v)];
    lm_uv[k][0] = static_cast<float>(p / V);
    lm_uv[k][1] = static_cast<float>(p % V);
  }
  auto mask = torch::tensor(h.mask, torch::kLong).view({U, V}).ne(0);
  auto topo = render::BuildTopology(mask, lm_uv);
  // The stored topology must be the one the mask defines (render/Topology.h).
  auto tri = torch::tensor(h.triangles, torch::kLong);
  auto uv = torch::tensor(h.vertex_uv, torch::kFloat);
  if (topo.num_vertices() != s.num_vertices || tri.numel() != topo.triangles.numel() ||
      !torch::equal(tri.view({-1, 3}), topo.triangles))
    throw InputError(shard.path(), "/topology/triangles differ from the triangulation of /topology/mask "
                                   "(render/Topology.h); the file is not a facebatch shard of this version");
  if (uv.numel() != topo.vertex_uv.numel() || !torch::allclose(uv.view({-1, 2}), topo.vertex_uv, 0, 1e-6))
    throw InputError(shard.path(), "/topology/vertex_uv differs from the UV grid of /topology/mask");
  for (int k = 0; k < 68; ++k) {
    if (topo.landmarks68[k].item<int64_t>() != h.landmarks68[static_cast<size_t>(k)])
      throw InputError(shard.path(), "/topology/landmarks68 could not be reproduced from the mask");
  }
  return topo;
}

}  // namespace facebatch::batch
