#pragma once
// MATLAB v5 .mat files (300W-LP, AFLW2000-3D) through libmatio.
// Arrays are kept as MATLAB stores them: column-major. A 2x68 `pt2d` has
// values[2*j + 0] = x of landmark j and values[2*j + 1] = y (row 0 = x, row 1 = y).
#include <cstddef>
#include <string>
#include <vector>

struct _mat_t;  // matio's file handle

namespace facebatch::io {

/// A numeric MATLAB array converted to doubles (every class: double, single,
/// int8..uint64, logical), column-major, with its MATLAB class kept for writing.
struct MatArray {
  std::vector<size_t> dims;    ///< MATLAB dimensions (rank >= 2)
  std::vector<double> values;  ///< column-major, prod(dims) values
  std::string mat_class = "double";  ///< "double", "single", "int8" ... "uint64", "logical"

  size_t rows() const { return dims.empty() ? 0 : dims[0]; }
  size_t cols() const;  ///< product of dims[1..]
  size_t size() const { return values.size(); }
  /// Element (r, c) of a 2-D array (column-major).
  double at(size_t r, size_t c) const { return values[c * rows() + r]; }
};

/// Read-only MAT file (v4, v5 compressed or not, v7.3 when matio has HDF5). RAII.
class MatFile {
 public:
  /// Throws InputError(path, ...) if the file is missing or not a MAT file.
  explicit MatFile(const std::string& path);
  ~MatFile();
  MatFile(const MatFile&) = delete;
  MatFile& operator=(const MatFile&) = delete;

  const std::string& path() const { return path_; }
  /// Names of the variables in the file (header scan, data not read).
  std::vector<std::string> VariableNames();
  bool Has(const std::string& name);
  /// Reads variable `name` as doubles. InputError naming the file and the
  /// variable when it is missing, not numeric (struct, cell, char), complex,
  /// sparse, or unreadable (corrupt data).
  MatArray Read(const std::string& name);
  /// Read() and check the shape: each of rows/cols must match unless it is 0
  /// ("any"); `allow_transpose` also accepts the transposed shape (returned
  /// transposed to rows x cols).
  MatArray ReadShape(const std::string& name, size_t rows, size_t cols, bool allow_transpose = false);

 private:
  std::string path_;
  _mat_t* mat_ = nullptr;
};

/// Writes MAT v5 files with zlib-compressed variables, as MATLAB's `save` does.
class MatWriter {
 public:
  explicit MatWriter(const std::string& path);  ///< creates/truncates; InputError on failure
  /// Same, with the 116-byte text header given (MATLAB's default carries the
  /// creation time; a fixed header makes the file bytes reproducible).
  MatWriter(const std::string& path, const std::string& header);
  ~MatWriter();
  MatWriter(const MatWriter&) = delete;
  MatWriter& operator=(const MatWriter&) = delete;
  /// Writes `array` (values column-major) converted to its `mat_class`.
  void Write(const std::string& name, const MatArray& array);
  void Close();

 private:
  std::string path_;
  _mat_t* mat_ = nullptr;
};

/// Makes a rows x cols array from row-major values (convenient in code and tests).
MatArray MakeMatArray(size_t rows, size_t cols, const std::vector<double>& row_major,
                      const std::string& mat_class = "double");

}  // namespace facebatch::io
