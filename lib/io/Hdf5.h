#pragma once
// The HDF5 layer of facebatch (the only code that talks to the HDF5 C API), torch-free, in two
// APIs over one set of internals:
//  - this header: a tree API (files, groups, attributes and contiguous datasets of plain
//    numbers) for model files (model/ModelFile.h) and ground truth (synth/GroundTruth.h);
//  - io/Hdf5Rows.h: a row-streaming API (datasets [n, ...] chunked one row per chunk, float16
//    storage, variable-length strings) for shard files, their parts and merged files (lib/batch).
// Every failure throws facebatch::InputError naming the file and the object ("<file>: <object>:
// <problem>"); HDF5's own error printing is switched off.
//
// Layout conventions: datasets are row-major (C order) with the given dims,
// exactly what h5py returns as a numpy array.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace facebatch::io::hdf5 {

/// Element types of both APIs (native byte order in memory, little-endian IEEE / two's
/// complement on disk; kFloat16 is IEEE half precision, kString a variable-length UTF-8 string).
/// The tree API (Array) takes the numeric types but kFloat16 and refuses kFloat16/kString
/// (arrays and datasets) with an error naming the type; the row API (io/Hdf5Rows.h) takes all.
enum class DType { kFloat32, kFloat64, kInt32, kInt64, kUInt8, kFloat16, kString };
const char* DTypeName(DType t);  ///< "float32", ..., "float16", "string"
size_t DTypeSize(DType t);       ///< bytes of one element (0 for kString: variable length)

/// A dataset's contents: raw bytes of `dims` elements of `dtype` (a numeric type but kFloat16).
struct Array {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> dims;
  std::vector<unsigned char> bytes;
  int64_t numel() const;
  template <class T> const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
  template <class T> T* data() { return reinterpret_cast<T*>(bytes.data()); }
};

/// Makes an Array from typed values (dims must multiply to values.size()).
Array MakeArray(const std::vector<float>& values, std::vector<int64_t> dims);
Array MakeArray(const std::vector<int64_t>& values, std::vector<int64_t> dims);
Array MakeArray(const std::vector<int32_t>& values, std::vector<int64_t> dims);
Array MakeArray(const std::vector<uint8_t>& values, std::vector<int64_t> dims);

class File;

/// A group (the root group included). Cheap to copy (shares the HDF5 handle).
class Group {
 public:
  Group() = default;
  const std::string& file_path() const { return file_; }
  const std::string& name() const { return name_; }  ///< absolute HDF5 path, "/" for the root

  bool Has(const std::string& child) const;        ///< a direct child (group or dataset)
  bool HasGroup(const std::string& child) const;
  bool HasDataset(const std::string& child) const;
  bool HasAttribute(const std::string& attr) const;
  std::vector<std::string> Children() const;       ///< names of direct children, sorted

  Group CreateGroup(const std::string& child);      ///< fails if it exists
  Group OpenGroup(const std::string& child) const;  ///< fails with "missing group" if absent

  void WriteDataset(const std::string& child, const Array& array);
  /// Creates a dataset of `dims` and `dtype` without writing it (HDF5's fill value 0 until
  /// written); fill it with WriteRows, e.g. row by row when it does not fit in memory.
  void CreateDataset(const std::string& child, DType dtype, const std::vector<int64_t>& dims);
  /// Writes `rows` (dims [k, d1, d2, ...]) into rows [row0, row0 + k) of an existing
  /// dataset of dims [n, d1, d2, ...] and the same element type.
  void WriteRows(const std::string& child, int64_t row0, const Array& rows);
  /// Overwrites an existing dataset's values (same dims and element type).
  void OverwriteDataset(const std::string& child, const Array& array);
  /// Unlinks a child (group or dataset).
  void Remove(const std::string& child);
  Array ReadDataset(const std::string& child) const;
  /// Dims and dtype without reading the data (any DType: float16 and string datasets too,
  /// which ReadDataset refuses).
  Array DatasetInfo(const std::string& child) const;

  void SetAttribute(const std::string& attr, const std::string& value);  ///< variable-length UTF-8 string
  void SetAttribute(const std::string& attr, int64_t value);
  void SetAttribute(const std::string& attr, double value);
  std::string GetStringAttribute(const std::string& attr) const;
  int64_t GetIntAttribute(const std::string& attr) const;
  double GetDoubleAttribute(const std::string& attr) const;

 private:
  friend class File;
  Group(std::shared_ptr<int64_t> handle, std::string file, std::string name)
      : handle_(std::move(handle)), file_(std::move(file)), name_(std::move(name)) {}
  [[noreturn]] void Fail(const std::string& object, const std::string& problem) const;
  void CheckType(const std::string& object, DType t) const;  ///< fails for kFloat16/kString
  std::string ChildPath(const std::string& child) const;
  std::shared_ptr<int64_t> handle_;  // hid_t, closed when the last copy goes
  std::string file_;
  std::string name_;
};

/// An HDF5 file. Open checks that the path exists and is HDF5 (a clear
/// "not an HDF5 file" / "truncated or damaged" error otherwise).
class File {
 public:
  static File Create(const std::string& path);    ///< truncates an existing file
  static File OpenRead(const std::string& path);
  static File OpenReadWrite(const std::string& path);  ///< an existing file, for in-place updates
  File() = default;
  Group root() const { return root_; }
  const std::string& path() const { return path_; }
  /// Flushes and closes (also done by the destructor of the last copy); a
  /// failure to close throws here, not in the destructor.
  void Close();

 private:
  static File Open(const std::string& path, bool writable);
  std::shared_ptr<int64_t> handle_;
  std::string path_;
  Group root_;
};

/// True when the file starts with the HDF5 signature (H5Fis_hdf5).
bool IsHdf5(const std::string& path);

}  // namespace facebatch::io::hdf5
