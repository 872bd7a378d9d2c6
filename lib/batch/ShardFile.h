#pragma once
// The shard file (schemas/shard.md, schemas/shard.schema.json): one HDF5 file
// per shard with the topology once and every per-image dataset [n, ...]
// chunked one image per chunk (shuffle + deflate; readable by h5py without
// plugins). Part files (crash safety, see ShardWriter.h) use the same layout.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/Hdf5Rows.h"

namespace facebatch::batch {

inline constexpr const char* kShardFormat = "facebatch-shard";
inline constexpr int kShardSchemaVersion = 1;

/// Selectable UV-map outputs (--outputs), in file order.
const std::vector<std::string>& MapOutputNames();  ///< shape, shape_proxy, albedo, albedo_proxy, shape_residual, albedo_residual
/// Everything selectable: the maps plus "vertices" (model space and projected into the original image).
std::set<std::string> ParseOutputs(const std::string& text);  ///< "all" or a comma list; UsageError otherwise

/// Sizes that fix the per-image dims.
struct LayoutSizes {
  int64_t latent_shape = 0, latent_albedo = 0;
  int64_t uv_rows = 0, uv_cols = 0, num_vertices = 0, num_triangles = 0;
  std::vector<std::string> terms;  ///< fit term names (the last is "total")
};

struct FieldSpec {
  std::string path;             ///< e.g. "/latents/f_shape"
  io::hdf5::DType dtype = io::hdf5::DType::kFloat32;
  std::vector<int64_t> dims;    ///< per image (without the leading n)
  std::string description;
  int64_t size() const;
};

struct ShardLayout {
  LayoutSizes sizes;
  std::set<std::string> outputs;
  bool half = false;  ///< UV maps and vertices stored as float16
  std::vector<FieldSpec> fields;
  static ShardLayout Make(const LayoutSizes& sizes, const std::set<std::string>& outputs, bool half);
  const FieldSpec* Find(const std::string& path) const;
};

/// One image's values (float fields in float32; f16 conversion happens on writing).
struct ImageRecord {
  std::string id;
  int64_t position = 0;  ///< position in the shard's item list (output order)
  std::map<std::string, std::string> strings;           ///< by field path
  std::map<std::string, std::vector<float>> floats;     ///< float32/float16 fields
  std::map<std::string, std::vector<double>> doubles;   ///< float64 fields
  std::map<std::string, std::vector<int64_t>> ints;     ///< int64/uint8 fields
};

/// File-level content: root attributes and the topology.
struct ShardHeader {
  std::map<std::string, std::string> string_attrs;  ///< besides format (set by the writer)
  std::map<std::string, int64_t> int_attrs;         ///< besides schema_version, num_images
  std::vector<int64_t> triangles;   ///< [F, 3]
  std::vector<float> vertex_uv;     ///< [N, 2]
  std::vector<int64_t> landmarks68; ///< [68]
  std::vector<int64_t> mask;        ///< [U, V] 0/1 (stored uint8)
};

/// Writes a complete file (records in the given order) to `path` (not atomic:
/// callers write to a .tmp and rename).
void WriteShardFile(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                    const std::vector<ImageRecord>& records);

/// Builds the shard file at `path` from part files (of the same layout) one part at a
/// time: each image goes to row order.at(id) (every id of every part must be in `order`,
/// at most once, and `order` must be a permutation of 0..n-1). The fit job adds each part
/// as it closes, so the consolidation runs beside the fit and only the last part is left
/// when it ends. Memory: one part at a time. With `copy_chunks` the numeric datasets'
/// compressed chunks are copied as stored (io::hdf5::RowWriter::CopyRowChunks); false
/// decompresses and recompresses every row (the same file content; the benchmark's baseline).
/// Not atomic: callers write to a .tmp and rename after Close().
class ShardConsolidation {
 public:
  ShardConsolidation(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                     std::map<std::string, int64_t> order, bool copy_chunks = true);
  ~ShardConsolidation();
  ShardConsolidation(const ShardConsolidation&) = delete;
  ShardConsolidation& operator=(const ShardConsolidation&) = delete;
  /// Copies the images of one part file to their rows (InputError naming the part for an
  /// id outside the shard, one already added, or a dataset of unexpected dims).
  void Add(const std::string& part);
  int64_t rows_added() const { return rows_added_; }
  int64_t rows() const { return static_cast<int64_t>(order_.size()); }
  /// Closes and fsyncs the file; every row must have been added.
  void Close();

 private:
  std::string path_;
  ShardLayout layout_;
  std::map<std::string, int64_t> order_;
  std::vector<bool> added_;
  int64_t rows_added_ = 0;
  bool copy_chunks_;
  std::unique_ptr<io::hdf5::RowWriter> writer_;
};

/// The whole consolidation in one call: ShardConsolidation over `parts`, then Close().
void ConsolidateShardFiles(const std::string& path, const ShardHeader& header, const ShardLayout& layout,
                           const std::vector<std::string>& parts, const std::map<std::string, int64_t>& order,
                           bool copy_chunks = true);

/// The ids (/images/id) of a shard or part file.
std::vector<std::string> ReadShardIds(const std::string& path);

/// The layout a file declares in its attributes (sizes, outputs, dtype, term names).
ShardLayout LayoutOfFile(const io::hdf5::RowReader& reader);

}  // namespace facebatch::batch
