#include "io/MatFile.h"

#include <matio.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/Error.h"
#include "core/Log.h"

namespace facebatch::io {
namespace {

// matio's default log function aborts on errors; route its messages to our log instead
// so that a corrupt file becomes an InputError, never a crash.
void MatioLog(int level, char* message) {
  log::Debug("matio: {}", message ? message : "");
}

void InitMatioLogging() {
  static std::once_flag once;
  std::call_once(once, [] { Mat_LogInitFunc("facebatch", &MatioLog); });
}

const char* ClassName(matio_classes c) {
  switch (c) {
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_CHAR: return "char";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_CELL: return "cell";
    case MAT_C_SPARSE: return "sparse";
    case MAT_C_FUNCTION: return "function";
    case MAT_C_OBJECT: return "object";
    default: return "unknown";
  }
}

template <typename T>
void Convert(const void* data, size_t n, std::vector<double>& out) {
  const T* p = static_cast<const T*>(data);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]);
}

struct VarFree {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using VarPtr = std::unique_ptr<matvar_t, VarFree>;

std::string DimsText(const std::vector<size_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

}  // namespace

size_t MatArray::cols() const {
  if (dims.size() < 2) return dims.empty() ? 0 : 1;
  size_t c = 1;
  for (size_t i = 1; i < dims.size(); ++i) c *= dims[i];
  return c;
}

MatFile::MatFile(const std::string& path) : path_(path) {
  InitMatioLogging();
  mat_ = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!mat_) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw InputError(path, "cannot open the .mat file (missing or unreadable)");
    std::fclose(f);
    throw InputError(path, "not a MATLAB .mat file (or a corrupt header)");
  }
}

MatFile::~MatFile() {
  if (mat_) Mat_Close(mat_);
}

std::vector<std::string> MatFile::VariableNames() {
  std::vector<std::string> names;
  Mat_Rewind(mat_);
  while (matvar_t* v = Mat_VarReadNextInfo(mat_)) {
    if (v->name) names.emplace_back(v->name);
    Mat_VarFree(v);
  }
  Mat_Rewind(mat_);
  return names;
}

bool MatFile::Has(const std::string& name) {
  VarPtr info(Mat_VarReadInfo(mat_, name.c_str()));
  return info != nullptr;
}

MatArray MatFile::Read(const std::string& name) {
  VarPtr info(Mat_VarReadInfo(mat_, name.c_str()));
  if (!info) throw InputError(path_, "variable '" + name + "' is missing");
  if (info->class_type == MAT_C_STRUCT || info->class_type == MAT_C_CELL ||
      info->class_type == MAT_C_CHAR || info->class_type == MAT_C_SPARSE ||
      info->class_type == MAT_C_FUNCTION || info->class_type == MAT_C_OBJECT ||
      info->class_type == MAT_C_EMPTY || info->class_type == MAT_C_OPAQUE)
    throw InputError(path_, "variable '" + name + "' is not a numeric array (it is " +
                                ClassName(info->class_type) + ")");
  if (info->isComplex) throw InputError(path_, "variable '" + name + "' is complex");
  VarPtr var(Mat_VarRead(mat_, name.c_str()));
  if (!var || (!var->data && Mat_VarGetSize(var.get()) > 0))
    throw InputError(path_, "variable '" + name + "' cannot be read (corrupt data)");
  MatArray out;
  size_t n = 1;
  for (int i = 0; i < var->rank; ++i) {
    out.dims.push_back(var->dims[i]);
    n *= var->dims[i];
  }
  out.mat_class = var->isLogical ? "logical" : ClassName(var->class_type);
  const void* d = var->data;
  if (n > 0 && var->data_size > 0 && var->nbytes < n * static_cast<size_t>(var->data_size))
    throw InputError(path_, "variable '" + name + "' has truncated data");
  switch (var->class_type) {
    case MAT_C_DOUBLE: Convert<double>(d, n, out.values); break;
    case MAT_C_SINGLE: Convert<float>(d, n, out.values); break;
    case MAT_C_INT8: Convert<int8_t>(d, n, out.values); break;
    case MAT_C_UINT8: Convert<uint8_t>(d, n, out.values); break;
    case MAT_C_INT16: Convert<int16_t>(d, n, out.values); break;
    case MAT_C_UINT16: Convert<uint16_t>(d, n, out.values); break;
    case MAT_C_INT32: Convert<int32_t>(d, n, out.values); break;
    case MAT_C_UINT32: Convert<uint32_t>(d, n, out.values); break;
    case MAT_C_INT64: Convert<int64_t>(d, n, out.values); break;
    case MAT_C_UINT64: Convert<uint64_t>(d, n, out.values); break;
    default:
      throw InputError(path_, "variable '" + name + "' is not a numeric array (it is " +
                                  ClassName(var->class_type) + ")");
  }
  return out;
}

MatArray MatFile::ReadShape(const std::string& name, size_t rows, size_t cols, bool allow_transpose) {
  MatArray a = Read(name);
  auto matches = [&](size_t r, size_t c) {
    return a.dims.size() == 2 && (rows == 0 || r == rows) && (cols == 0 || c == cols);
  };
  if (matches(a.dims.size() == 2 ? a.dims[0] : 0, a.dims.size() == 2 ? a.dims[1] : 0)) return a;
  if (allow_transpose && a.dims.size() == 2 && matches(a.dims[1], a.dims[0])) {
    MatArray t;
    t.mat_class = a.mat_class;
    t.dims = {a.dims[1], a.dims[0]};
    t.values.resize(a.values.size());
    for (size_t r = 0; r < a.dims[0]; ++r)
      for (size_t c = 0; c < a.dims[1]; ++c) t.values[r * t.dims[0] + c] = a.values[c * a.dims[0] + r];
    return t;
  }
  std::string want = (rows ? std::to_string(rows) : "N") + "x" + (cols ? std::to_string(cols) : "N");
  throw InputError(path_, "variable '" + name + "' has shape " + DimsText(a.dims) + ", expected " +
                              want + (allow_transpose ? " (or its transpose)" : ""));
}

MatWriter::MatWriter(const std::string& path) : path_(path) {
  InitMatioLogging();
  mat_ = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  if (!mat_) throw InputError(path, "cannot create the .mat file");
}

MatWriter::MatWriter(const std::string& path, const std::string& header) : path_(path) {
  InitMatioLogging();
  mat_ = Mat_CreateVer(path.c_str(), header.substr(0, 116).c_str(), MAT_FT_MAT5);
  if (!mat_) throw InputError(path, "cannot create the .mat file");
}

MatWriter::~MatWriter() { Close(); }

void MatWriter::Close() {
  if (mat_) Mat_Close(mat_);
  mat_ = nullptr;
}

namespace {
template <typename T>
std::vector<char> Pack(const std::vector<double>& v) {
  std::vector<char> bytes(v.size() * sizeof(T));
  for (size_t i = 0; i < v.size(); ++i) {
    T x = static_cast<T>(v[i]);
    std::memcpy(bytes.data() + i * sizeof(T), &x, sizeof(T));
  }
  return bytes;
}
}  // namespace

void MatWriter::Write(const std::string& name, const MatArray& array) {
  if (!mat_) throw Error("MatWriter: " + path_ + " is closed");
  size_t n = 1;
  for (size_t d : array.dims) n *= d;
  if (array.dims.size() < 2 || n != array.values.size())
    throw Error("MatWriter: '" + name + "' dims do not match its value count");
  matio_classes cls;
  matio_types type;
  std::vector<char> bytes;
  const std::string& c = array.mat_class;
  int flags = 0;
  if (c == "double") { cls = MAT_C_DOUBLE; type = MAT_T_DOUBLE; bytes = Pack<double>(array.values); }
  else if (c == "single") { cls = MAT_C_SINGLE; type = MAT_T_SINGLE; bytes = Pack<float>(array.values); }
  else if (c == "int8") { cls = MAT_C_INT8; type = MAT_T_INT8; bytes = Pack<int8_t>(array.values); }
  else if (c == "uint8" || c == "logical") {
    cls = MAT_C_UINT8; type = MAT_T_UINT8; bytes = Pack<uint8_t>(array.values);
    if (c == "logical") flags = MAT_F_LOGICAL;
  }
  else if (c == "int16") { cls = MAT_C_INT16; type = MAT_T_INT16; bytes = Pack<int16_t>(array.values); }
  else if (c == "uint16") { cls = MAT_C_UINT16; type = MAT_T_UINT16; bytes = Pack<uint16_t>(array.values); }
  else if (c == "int32") { cls = MAT_C_INT32; type = MAT_T_INT32; bytes = Pack<int32_t>(array.values); }
  else if (c == "uint32") { cls = MAT_C_UINT32; type = MAT_T_UINT32; bytes = Pack<uint32_t>(array.values); }
  else if (c == "int64") { cls = MAT_C_INT64; type = MAT_T_INT64; bytes = Pack<int64_t>(array.values); }
  else if (c == "uint64") { cls = MAT_C_UINT64; type = MAT_T_UINT64; bytes = Pack<uint64_t>(array.values); }
  else throw Error("MatWriter: unsupported class '" + c + "'");
  std::vector<size_t> dims = array.dims;
  VarPtr var(Mat_VarCreate(name.c_str(), cls, type, static_cast<int>(dims.size()), dims.data(),
                           bytes.data(), flags | MAT_F_DONT_COPY_DATA));
  if (!var) throw InputError(path_, "cannot create variable '" + name + "'");
  int rc = Mat_VarWrite(mat_, var.get(), MAT_COMPRESSION_ZLIB);
  var->data = nullptr;  // owned by `bytes`
  if (rc != 0) throw InputError(path_, "cannot write variable '" + name + "'");
}

MatArray MakeMatArray(size_t rows, size_t cols, const std::vector<double>& row_major,
                      const std::string& mat_class) {
  if (row_major.size() != rows * cols) throw Error("MakeMatArray: value count mismatch");
  MatArray a;
  a.dims = {rows, cols};
  a.mat_class = mat_class;
  a.values.resize(rows * cols);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; ++c) a.values[c * rows + r] = row_major[r * cols + c];
  return a;
}

}  // namespace facebatch::io
