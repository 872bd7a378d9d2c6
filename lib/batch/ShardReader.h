#pragma once
// Reading shard files (schemas/shard.md) image by image, for every tool that
// consumes fit output (export, eval, report, synth --from, merge checks).
// A merged file (facebatch merge) has the same layout and reads the same way.
//
//   batch::ShardReader shard("out/shard-00000-of-00004.h5");
//   for (int64_t i = 0; i < shard.size(); ++i) {
//     if (shard.status(i) != "ok") continue;
//     auto albedo = shard.Floats("/maps/albedo", i);   // [3, U, V], float16 widened
//   }
//
// Memory: per-image reads touch only that image's chunks (one image per chunk).
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>
#include "batch/ShardFile.h"
#include "render/Topology.h"

namespace facebatch::batch {

class ShardReader {
 public:
  /// Opens `path`; InputError (naming the file) unless it is a facebatch shard
  /// of a schema version this build reads.
  explicit ShardReader(const std::string& path);
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const std::string& path() const;
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  const ShardLayout& layout() const { return layout_; }
  /// Root attributes and the topology (triangles [F, 3], vertex_uv [N, 2], landmarks68, mask [U, V]).
  const ShardHeader& header() const { return header_; }
  const std::vector<std::string>& ids() const { return ids_; }
  const std::string& status(int64_t row) const { return statuses_.at(static_cast<size_t>(row)); }
  /// Row of an id, -1 when absent.
  int64_t Find(const std::string& id) const;
  /// Whether the file has this per-image dataset (maps and vertices are selectable).
  bool Has(const std::string& field) const;

  /// One image's value of a float field (float16/float32), row-major per the field's dims.
  std::vector<float> Floats(const std::string& field, int64_t row) const;
  std::vector<double> Doubles(const std::string& field, int64_t row) const;  ///< float64 fields
  std::vector<int64_t> Ints(const std::string& field, int64_t row) const;     ///< int64/uint8 fields
  std::string String(const std::string& field, int64_t row) const;
  /// A whole string column (e.g. "/images/reason_code").
  std::vector<std::string> Strings(const std::string& field) const;
  /// Every field of the layout (or only `fields`) of one image, as the writer takes it.
  ImageRecord Read(int64_t row, const std::set<std::string>& fields = {}) const;

 private:
  const FieldSpec& Spec(const std::string& field) const;
  std::unique_ptr<io::hdf5::RowReader> reader_;
  ShardLayout layout_;
  ShardHeader header_;
  std::vector<std::string> ids_, statuses_;
};

/// The mesh topology of a shard (render::BuildTopology of /topology/mask with
/// the /topology/landmarks68 vertices), checked against the stored
/// /topology/triangles and /topology/vertex_uv: InputError naming the file otherwise.
render::FaceTopology TopologyOfShard(const ShardReader& shard);

}  // namespace facebatch::batch
