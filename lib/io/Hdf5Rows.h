#pragma once
// The row-streaming half of the HDF5 layer (io/Hdf5.h has the tree half and the overview):
// files of per-row datasets [n, ...], written and read a block of rows at a time. For shard
// files, their part files and merged files (lib/batch; schemas/shard.md, schemas/merge.md).
//
// Storage of a chunked dataset: chunks of one row along dim 0 (unlimited), shuffle + deflate 4;
// float16 as IEEE half; strings variable-length UTF-8. New files are written in the HDF5 1.8
// format (libver bounds earliest..1.8) unless they need later features (virtual datasets).
// Every failure throws InputError naming the file and the object; a failed write adds what is
// wrong with the file system (core/Disk.h DiskDiagnosis).
#include <cstdint>
#include <string>
#include <vector>

#include "io/Hdf5.h"

namespace facebatch::io::hdf5 {

/// One dataset's values (or a block of its rows), converted to a few memory types.
struct RowData {
  std::vector<int64_t> dims;
  DType dtype = DType::kFloat32;
  std::vector<float> f32;     ///< float16/float32 (converted)
  std::vector<double> f64;
  std::vector<int64_t> i64;   ///< int32, int64 and uint8
  std::vector<std::string> strings;
  int64_t rows() const { return dims.empty() ? 0 : dims[0]; }
  int64_t row_size() const;
};

/// A dataset's element type, dims and storage.
struct RowInfo {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;
  bool chunked = false;
  std::vector<int64_t> chunk;
  bool shuffle = false, deflate = false;
};

/// The rows [first_row, first_row + rows) of a dataset written from another file's dataset of
/// the same path (RowWriter::CreateVirtual, CreateConcatenated).
struct RowSource {
  std::string path;      ///< the source file, as opened for reading
  std::string vds_name;  ///< the name a virtual dataset records for it (relative to the written file's directory)
  int64_t first_row = 0;
  int64_t rows = 0;
};

class RowReader;

class RowWriter {
 public:
  /// Creates (truncates) `path`. `hdf5_1_8_format` bounds the file format to HDF5 1.8 (readable
  /// by every HDF5 >= 1.8; shard files); false leaves it open (needed for virtual datasets).
  explicit RowWriter(const std::string& path, bool hdf5_1_8_format = true);
  ~RowWriter();
  RowWriter(const RowWriter&) = delete;
  RowWriter& operator=(const RowWriter&) = delete;
  /// Creates groups along `path` ("/a/b") as needed.
  void Group(const std::string& path);
  /// A root or group/dataset attribute (an existing one of that name is replaced).
  void Attr(const std::string& object, const std::string& name, const std::string& value);
  void Attr(const std::string& object, const std::string& name, int64_t value);
  /// A dataset [dims...] (parent groups created as needed); chunked: chunks of one row along
  /// dim 0 (+ shuffle, deflate 4).
  void Create(const std::string& path, DType dtype, const std::vector<int64_t>& dims, bool chunked);
  /// Writes `count` rows from `row` on (float data for float types, int64 for kInt64/kInt32,
  /// uint8 for kUInt8); data holds count * row size elements.
  void WriteRows(const std::string& path, int64_t row, int64_t count, const void* data);
  void WriteStrings(const std::string& path, int64_t row, const std::vector<std::string>& values);
  /// Copies row i of `src`'s dataset `path` to row dst_rows[i] of this file's `path` as raw
  /// chunks (H5Dread_chunk / H5Dwrite_chunk: no decompression or recompression) when both are
  /// chunked one row per chunk with the same type, chunk shape and filters; rows without a
  /// stored chunk stay at the fill value. Returns false, having copied nothing, when the two
  /// datasets do not match that way (the caller then copies through memory).
  bool CopyRowChunks(const RowReader& src, const std::string& path, const std::vector<int64_t>& dst_rows);
  /// Copies every attribute of `src`'s root group (any type, as stored) to this file's root.
  void CopyRootAttributes(const RowReader& src);
  /// Copies the object `path` (a group with everything under it, or a dataset) from `src`.
  void CopyObject(const RowReader& src, const std::string& path);
  /// A dataset `path` of `total` rows with the element type and row dims of `like`'s `path`, as
  /// a virtual dataset mapping each source's rows (no data copied; unmapped float rows read
  /// NaN). Needs hdf5_1_8_format false.
  void CreateVirtual(const std::string& path, const RowReader& like, const std::vector<RowSource>& sources,
                     int64_t total);
  /// The same dataset stored in this file (the storage of `like`'s `path`: chunks, filters),
  /// the sources' rows copied through memory in blocks.
  void CreateConcatenated(const std::string& path, const RowReader& like, const std::vector<RowSource>& sources,
                          int64_t total);
  /// Closes the file and fsyncs it (throws on failure).
  void Close();
  const std::string& path() const { return path_; }

 private:
  long long OpenDataset(const std::string& path);
  std::string path_;
  long long file_ = -1;  // hid_t
};

class RowReader {
 public:
  /// Opens an existing HDF5 file read-only ("no such file", "not an HDF5 file", "truncated or
  /// damaged" otherwise).
  explicit RowReader(const std::string& path);
  ~RowReader();
  RowReader(const RowReader&) = delete;
  RowReader& operator=(const RowReader&) = delete;
  bool Exists(const std::string& path) const;
  RowInfo Describe(const std::string& path) const;
  RowData Read(const std::string& path) const;
  /// Rows [row, row + count) of a dataset along its first dimension (a hyperslab:
  /// only those chunks are read and decompressed).
  RowData ReadRows(const std::string& path, int64_t row, int64_t count) const;
  bool HasAttr(const std::string& object, const std::string& name) const;
  /// Names of the attributes of `object` ("/" for the root), sorted by name.
  std::vector<std::string> AttrNames(const std::string& object) const;
  /// Whether an attribute is a string (else an integer or float).
  bool IsStringAttr(const std::string& object, const std::string& name) const;
  std::string StringAttr(const std::string& object, const std::string& name) const;
  int64_t IntAttr(const std::string& object, const std::string& name) const;
  const std::string& path() const { return path_; }

 private:
  friend class RowWriter;  // CopyRowChunks and the other copies from a source file
  std::string path_;
  long long file_ = -1;  // hid_t
};

/// fsync a file or directory (throws InputError on failure).
void SyncPath(const std::string& path);
/// Renames tmp -> final atomically after fsyncing tmp, then fsyncs the directory.
void AtomicRename(const std::string& tmp, const std::string& final_path);

}  // namespace facebatch::io::hdf5
