#pragma once
// Minimal HDF5 C-API helpers for shard files (lib/batch only): per-image
// datasets [n, ...] chunked one image per chunk with shuffle + deflate,
// variable-length UTF-8 string datasets, float16 storage, attributes.
// Every failure throws InputError naming the file and the object.
#include <cstdint>
#include <string>
#include <vector>

namespace facebatch::batch::h5 {

enum class Kind { kFloat32, kFloat16, kFloat64, kInt64, kUInt8, kString };
const char* KindName(Kind k);

class Writer {
 public:
  explicit Writer(const std::string& path);  ///< creates (truncates)
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  /// Creates groups along `path` ("/a/b") as needed.
  void Group(const std::string& path);
  void Attr(const std::string& object, const std::string& name, const std::string& value);
  void Attr(const std::string& object, const std::string& name, int64_t value);
  /// A dataset [dims...]; chunked: chunks of one row along dim 0 (+ shuffle, deflate 4).
  void Create(const std::string& path, Kind kind, const std::vector<int64_t>& dims, bool chunked);
  /// Writes `count` rows from `row` on (float data for float kinds, int64 for kInt64,
  /// uint8 for kUInt8); data holds count * row size elements.
  void WriteRows(const std::string& path, int64_t row, int64_t count, const void* data);
  void WriteStrings(const std::string& path, int64_t row, const std::vector<std::string>& values);
  /// Copies row i of `src`'s dataset `path` to row dst_rows[i] of this file's `path` as raw
  /// chunks (H5Dread_chunk / H5Dwrite_chunk: no decompression or recompression) when both are
  /// chunked one row per chunk with the same type, chunk shape and filters; rows without a
  /// stored chunk stay at the fill value. Returns false, having copied nothing, when the two
  /// datasets do not match that way (the caller then copies through memory).
  bool CopyRowChunks(const class Reader& src, const std::string& path, const std::vector<int64_t>& dst_rows);
  /// Closes the file and fsyncs it (throws on failure).
  void Close();
  const std::string& path() const { return path_; }

 private:
  long long Open(const std::string& path);
  std::string path_;
  long long file_ = -1;
};

struct Dataset {
  std::vector<int64_t> dims;
  Kind kind = Kind::kFloat32;
  std::vector<float> f32;     ///< float16/float32 (converted)
  std::vector<double> f64;
  std::vector<int64_t> i64;   ///< int64 and uint8
  std::vector<std::string> strings;
  int64_t rows() const { return dims.empty() ? 0 : dims[0]; }
  int64_t row_size() const;
};

struct Info {
  Kind kind = Kind::kFloat32;
  std::vector<int64_t> dims;
  bool chunked = false;
  std::vector<int64_t> chunk;
  bool shuffle = false, deflate = false;
};

class Reader {
 public:
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  bool Exists(const std::string& path) const;
  Info Describe(const std::string& path) const;
  Dataset Read(const std::string& path) const;
  /// Rows [row, row + count) of a dataset along its first dimension (a hyperslab:
  /// only those chunks are read and decompressed).
  Dataset ReadRows(const std::string& path, int64_t row, int64_t count) const;
  bool HasAttr(const std::string& object, const std::string& name) const;
  /// Names of the attributes of `object` ("/" for the root), in creation order when tracked.
  std::vector<std::string> AttrNames(const std::string& object) const;
  /// Whether an attribute is a string (else an integer or float).
  bool IsStringAttr(const std::string& object, const std::string& name) const;
  std::string StringAttr(const std::string& object, const std::string& name) const;
  int64_t IntAttr(const std::string& object, const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  friend class Writer;  // CopyRowChunks
  std::string path_;
  long long file_ = -1;
};

/// fsync a file or directory (throws InputError on failure).
void SyncPath(const std::string& path);
/// Renames tmp -> final atomically after fsyncing tmp, then fsyncs the directory.
void AtomicRename(const std::string& tmp, const std::string& final_path);

}  // namespace facebatch::batch::h5
