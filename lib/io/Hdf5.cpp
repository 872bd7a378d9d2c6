#include "io/Hdf5.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/Disk.h"
#include "core/Error.h"
#include "io/Hdf5Internal.h"

namespace facebatch::io::hdf5 {
namespace {

using detail::Id;
using detail::Init;
using detail::NativeType;
using detail::Share;

// The tree API's element types: the numeric ones but float16 (Array holds raw native values).
bool TreeType(DType t) { return t != DType::kFloat16 && t != DType::kString; }
constexpr const char* kTreeTypes = "float32, float64, int32, int64 or uint8";

template <class T>
Array Make(const std::vector<T>& values, std::vector<int64_t> dims, DType t) {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  if (n != static_cast<int64_t>(values.size())) throw Error("hdf5::MakeArray: dims do not match the number of values");
  Array a;
  a.dtype = t;
  a.dims = std::move(dims);
  a.bytes.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(a.bytes.data(), values.data(), a.bytes.size());
  return a;
}

}  // namespace

const char* DTypeName(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kFloat16: return "float16";
    case DType::kString: return "string";
  }
  return "?";
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kUInt8: return 1;
    case DType::kFloat16: return 2;
    case DType::kString: return 0;  // variable length
  }
  return 0;
}

int64_t Array::numel() const {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

Array MakeArray(const std::vector<float>& v, std::vector<int64_t> d) { return Make(v, std::move(d), DType::kFloat32); }
Array MakeArray(const std::vector<int64_t>& v, std::vector<int64_t> d) { return Make(v, std::move(d), DType::kInt64); }
Array MakeArray(const std::vector<int32_t>& v, std::vector<int64_t> d) { return Make(v, std::move(d), DType::kInt32); }
Array MakeArray(const std::vector<uint8_t>& v, std::vector<int64_t> d) { return Make(v, std::move(d), DType::kUInt8); }

bool IsHdf5(const std::string& path) {
  Init();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  return H5Fis_hdf5(path.c_str()) > 0;
}

// ---------------------------------------------------------------- File

File File::Create(const std::string& path) {
  Init();
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) throw InputError(path, "cannot create HDF5 file (directory missing or not writable?)" + DiskDiagnosis(path));
  File file;
  file.path_ = path;
  file.handle_ = Share(f, H5Fclose);
  hid_t g = H5Gopen2(f, "/", H5P_DEFAULT);
  if (g < 0) throw InputError(path, "cannot open the root group");
  file.root_ = Group(Share(g, H5Gclose), path, "/");
  return file;
}

File File::OpenRead(const std::string& path) { return Open(path, false); }
File File::OpenReadWrite(const std::string& path) { return Open(path, true); }

File File::Open(const std::string& path, bool writable) {
  Init();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw InputError(path, "no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path, "not a regular file");
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) throw InputError(path, "not an HDF5 file (no HDF5 signature; foreign or empty file)");
  hid_t f = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw InputError(path, "cannot open HDF5 file: truncated or damaged");
  File file;
  file.path_ = path;
  file.handle_ = Share(f, H5Fclose);
  hid_t g = H5Gopen2(f, "/", H5P_DEFAULT);
  if (g < 0) throw InputError(path, "cannot open the root group: truncated or damaged file");
  file.root_ = Group(Share(g, H5Gclose), path, "/");
  return file;
}

void File::Close() {
  if (!handle_) return;
  root_ = Group();
  hid_t f = static_cast<hid_t>(*handle_);
  herr_t fl = H5Fflush(f, H5F_SCOPE_LOCAL);
  herr_t cl = H5Fclose(f);
  *handle_ = -1;  // closed already
  handle_.reset();
  if (fl < 0 || cl < 0) throw InputError(path_, "cannot flush/close HDF5 file (disk full?)");
}

// ---------------------------------------------------------------- Group

void Group::Fail(const std::string& object, const std::string& problem) const { detail::Fail(file_, object, problem); }

void Group::CheckType(const std::string& object, DType t) const {
  if (!TreeType(t))
    Fail(object, std::string("element type ") + DTypeName(t) + " is not supported here (" + kTreeTypes +
                     "; float16 and string datasets are read with io/Hdf5Rows.h)");
}

std::string Group::ChildPath(const std::string& child) const {
  return name_ == "/" ? "/" + child : name_ + "/" + child;
}

bool Group::Has(const std::string& child) const {
  if (!handle_) return false;
  return H5Lexists(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT) > 0;
}

static H5O_type_t ObjectType(hid_t g, const std::string& child) {
  H5O_info_t info;
  if (H5Oget_info_by_name(g, child.c_str(), &info, H5P_DEFAULT) < 0) return H5O_TYPE_UNKNOWN;
  return info.type;
}

bool Group::HasGroup(const std::string& child) const {
  return Has(child) && ObjectType(static_cast<hid_t>(*handle_), child) == H5O_TYPE_GROUP;
}

bool Group::HasDataset(const std::string& child) const {
  return Has(child) && ObjectType(static_cast<hid_t>(*handle_), child) == H5O_TYPE_DATASET;
}

bool Group::HasAttribute(const std::string& attr) const {
  if (!handle_) return false;
  return H5Aexists(static_cast<hid_t>(*handle_), attr.c_str()) > 0;
}

std::vector<std::string> Group::Children() const {
  std::vector<std::string> names;
  if (!handle_) return names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Literate(static_cast<hid_t>(*handle_), H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names) < 0)
    Fail(name_, "cannot list the group (damaged file?)");
  std::sort(names.begin(), names.end());
  return names;
}

Group Group::CreateGroup(const std::string& child) {
  hid_t g = H5Gcreate2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) Fail(ChildPath(child), "cannot create group");
  return Group(Share(g, H5Gclose), file_, ChildPath(child));
}

Group Group::OpenGroup(const std::string& child) const {
  if (!HasGroup(child)) Fail(ChildPath(child), "missing group");
  hid_t g = H5Gopen2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT);
  if (g < 0) Fail(ChildPath(child), "cannot open group (damaged file?)");
  return Group(Share(g, H5Gclose), file_, ChildPath(child));
}

void Group::WriteDataset(const std::string& child, const Array& a) {
  CheckType(ChildPath(child), a.dtype);
  if (static_cast<int64_t>(a.bytes.size()) != a.numel() * static_cast<int64_t>(DTypeSize(a.dtype)))
    Fail(ChildPath(child), "array bytes do not match its dims");
  std::vector<hsize_t> dims(a.dims.begin(), a.dims.end());
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
           H5Sclose);
  if (!space) Fail(ChildPath(child), "cannot create dataspace");
  Id type(detail::NewFileType(a.dtype), H5Tclose);
  Id ds(H5Dcreate2(static_cast<hid_t>(*handle_), child.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT),
        H5Dclose);
  if (!ds) Fail(ChildPath(child), "cannot create dataset");
  if (a.numel() > 0 && H5Dwrite(ds.id, NativeType(a.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, a.bytes.data()) < 0)
    Fail(ChildPath(child), "cannot write dataset");
}

void Group::CreateDataset(const std::string& child, DType dtype, const std::vector<int64_t>& dims_in) {
  CheckType(ChildPath(child), dtype);
  std::vector<hsize_t> dims(dims_in.begin(), dims_in.end());
  for (int64_t d : dims_in)
    if (d < 0) Fail(ChildPath(child), "negative dimension");
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
           H5Sclose);
  if (!space) Fail(ChildPath(child), "cannot create dataspace");
  Id type(detail::NewFileType(dtype), H5Tclose);
  Id ds(H5Dcreate2(static_cast<hid_t>(*handle_), child.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT,
                   H5P_DEFAULT),
        H5Dclose);
  if (!ds) Fail(ChildPath(child), "cannot create dataset");
}

void Group::WriteRows(const std::string& child, int64_t row0, const Array& a) {
  CheckType(ChildPath(child), a.dtype);
  if (static_cast<int64_t>(a.bytes.size()) != a.numel() * static_cast<int64_t>(DTypeSize(a.dtype)))
    Fail(ChildPath(child), "array bytes do not match its dims");
  Array info = DatasetInfo(child);
  if (info.dtype != a.dtype) Fail(ChildPath(child), "write rows of another element type");
  if (info.dims.empty() || a.dims.size() != info.dims.size() ||
      !std::equal(a.dims.begin() + 1, a.dims.end(), info.dims.begin() + 1))
    Fail(ChildPath(child), "write rows with other trailing dims");
  if (row0 < 0 || row0 + a.dims[0] > info.dims[0]) Fail(ChildPath(child), "rows out of range");
  if (a.dims[0] == 0) return;
  Id ds(H5Dopen2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds) Fail(ChildPath(child), "cannot open dataset");
  Id file_space(H5Dget_space(ds.id), H5Sclose);
  std::vector<hsize_t> start(a.dims.size(), 0), count(a.dims.begin(), a.dims.end());
  start[0] = static_cast<hsize_t>(row0);
  Id mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  if (!file_space || !mem_space ||
      H5Sselect_hyperslab(file_space.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
      H5Dwrite(ds.id, NativeType(a.dtype), mem_space.id, file_space.id, H5P_DEFAULT, a.bytes.data()) < 0)
    Fail(ChildPath(child), "cannot write rows");
}

void Group::OverwriteDataset(const std::string& child, const Array& a) {
  CheckType(ChildPath(child), a.dtype);
  Array info = DatasetInfo(child);
  if (info.dims != a.dims || info.dtype != a.dtype) Fail(ChildPath(child), "overwrite with different dims or type");
  Id ds(H5Dopen2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds || (a.numel() > 0 && H5Dwrite(ds.id, NativeType(a.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, a.bytes.data()) < 0))
    Fail(ChildPath(child), "cannot write dataset");
}

void Group::Remove(const std::string& child) {
  if (H5Ldelete(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT) < 0) Fail(ChildPath(child), "cannot remove");
}

Array Group::DatasetInfo(const std::string& child) const {
  if (!HasDataset(child)) Fail(ChildPath(child), "missing dataset");
  Id ds(H5Dopen2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds) Fail(ChildPath(child), "cannot open dataset (damaged file?)");
  Id type(H5Dget_type(ds.id), H5Tclose);
  Array a;
  if (!type || !detail::MapType(type.id, &a.dtype)) Fail(ChildPath(child), "unsupported element type");
  Id space(H5Dget_space(ds.id), H5Sclose);
  int nd = space ? H5Sget_simple_extent_ndims(space.id) : -1;
  if (nd < 0) Fail(ChildPath(child), "cannot read the dataspace (damaged file?)");
  std::vector<hsize_t> dims(nd);
  if (nd > 0) H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  a.dims.assign(dims.begin(), dims.end());
  return a;
}

Array Group::ReadDataset(const std::string& child) const {
  Array a = DatasetInfo(child);
  CheckType(ChildPath(child), a.dtype);
  Id ds(H5Dopen2(static_cast<hid_t>(*handle_), child.c_str(), H5P_DEFAULT), H5Dclose);
  a.bytes.resize(static_cast<size_t>(a.numel()) * DTypeSize(a.dtype));
  if (a.numel() > 0 && H5Dread(ds.id, NativeType(a.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, a.bytes.data()) < 0)
    Fail(ChildPath(child), "cannot read dataset (truncated or damaged file?)");
  return a;
}

void Group::SetAttribute(const std::string& attr, const std::string& value) {
  hid_t g = static_cast<hid_t>(*handle_);
  if (H5Aexists(g, attr.c_str()) > 0) H5Adelete(g, attr.c_str());
  Id type(detail::NewStringType(), H5Tclose);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(g, attr.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a) Fail(name_, "cannot create attribute '" + attr + "'");
  const char* p = value.c_str();
  if (H5Awrite(a.id, type.id, &p) < 0) Fail(name_, "cannot write attribute '" + attr + "'");
}

void Group::SetAttribute(const std::string& attr, int64_t value) {
  hid_t g = static_cast<hid_t>(*handle_);
  if (H5Aexists(g, attr.c_str()) > 0) H5Adelete(g, attr.c_str());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(g, attr.c_str(), H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a || H5Awrite(a.id, H5T_NATIVE_INT64, &value) < 0) Fail(name_, "cannot write attribute '" + attr + "'");
}

void Group::SetAttribute(const std::string& attr, double value) {
  hid_t g = static_cast<hid_t>(*handle_);
  if (H5Aexists(g, attr.c_str()) > 0) H5Adelete(g, attr.c_str());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(g, attr.c_str(), H5T_IEEE_F64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a || H5Awrite(a.id, H5T_NATIVE_DOUBLE, &value) < 0) Fail(name_, "cannot write attribute '" + attr + "'");
}

std::string Group::GetStringAttribute(const std::string& attr) const {
  if (!HasAttribute(attr)) Fail(name_, "missing attribute '" + attr + "'");
  Id a(H5Aopen(static_cast<hid_t>(*handle_), attr.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a) Fail(name_, "cannot open attribute '" + attr + "'");
  Id type(H5Aget_type(a.id), H5Tclose);
  if (H5Tget_class(type.id) != H5T_STRING) Fail(name_, "attribute '" + attr + "' is not a string");
  Id space(H5Aget_space(a.id), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.id) != 1) Fail(name_, "attribute '" + attr + "' is not a scalar string");
  if (H5Tis_variable_str(type.id) > 0) {
    Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.id, H5T_VARIABLE);
    H5Tset_cset(mem.id, H5Tget_cset(type.id));
    char* p = nullptr;
    if (H5Aread(a.id, mem.id, &p) < 0) Fail(name_, "cannot read attribute '" + attr + "'");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t n = H5Tget_size(type.id);
  std::string s(n, '\0');
  if (H5Aread(a.id, type.id, s.data()) < 0) Fail(name_, "cannot read attribute '" + attr + "'");
  s.resize(std::strlen(s.c_str()));
  return s;
}

int64_t Group::GetIntAttribute(const std::string& attr) const {
  if (!HasAttribute(attr)) Fail(name_, "missing attribute '" + attr + "'");
  Id a(H5Aopen(static_cast<hid_t>(*handle_), attr.c_str(), H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(a.id), H5Tclose);
  if (H5Tget_class(type.id) != H5T_INTEGER) Fail(name_, "attribute '" + attr + "' is not an integer");
  Id space(H5Aget_space(a.id), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.id) != 1) Fail(name_, "attribute '" + attr + "' is not a scalar");
  int64_t v = 0;
  if (H5Aread(a.id, H5T_NATIVE_INT64, &v) < 0) Fail(name_, "cannot read attribute '" + attr + "'");
  return v;
}

double Group::GetDoubleAttribute(const std::string& attr) const {
  if (!HasAttribute(attr)) Fail(name_, "missing attribute '" + attr + "'");
  Id a(H5Aopen(static_cast<hid_t>(*handle_), attr.c_str(), H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(a.id), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.id);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) Fail(name_, "attribute '" + attr + "' is not a number");
  Id space(H5Aget_space(a.id), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.id) != 1) Fail(name_, "attribute '" + attr + "' is not a scalar");
  double v = 0;
  if (H5Aread(a.id, H5T_NATIVE_DOUBLE, &v) < 0) Fail(name_, "cannot read attribute '" + attr + "'");
  return v;
}

}  // namespace facebatch::io::hdf5
