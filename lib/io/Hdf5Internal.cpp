#include "io/Hdf5Internal.h"

#include <mutex>

#include "core/Disk.h"
#include "core/Error.h"

namespace facebatch::io::hdf5::detail {

void Init() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5dont_atexit();
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report errors ourselves
  });
}

std::shared_ptr<int64_t> Share(hid_t id, herr_t (*close)(hid_t)) {
  return std::shared_ptr<int64_t>(new int64_t(id), [close](int64_t* p) {
    if (*p >= 0) close(static_cast<hid_t>(*p));
    delete p;
  });
}

void Fail(const std::string& file, const std::string& object, const std::string& problem) {
  throw InputError(file, object.empty() ? problem : object + ": " + problem);
}

void WriteFail(const std::string& file, const std::string& object, const std::string& problem) {
  Fail(file, object, problem + DiskDiagnosis(file));
}

hid_t NewStringType() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

namespace {
hid_t NewHalfType() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  H5Tset_precision(t, 16);
  return t;
}
}  // namespace

hid_t NewFileType(DType t) {
  switch (t) {
    case DType::kFloat32: return H5Tcopy(H5T_IEEE_F32LE);
    case DType::kFloat64: return H5Tcopy(H5T_IEEE_F64LE);
    case DType::kInt32: return H5Tcopy(H5T_STD_I32LE);
    case DType::kInt64: return H5Tcopy(H5T_STD_I64LE);
    case DType::kUInt8: return H5Tcopy(H5T_STD_U8LE);
    case DType::kFloat16: return NewHalfType();
    case DType::kString: return NewStringType();
  }
  return -1;
}

hid_t NativeType(DType t) {
  switch (t) {
    case DType::kFloat32: return H5T_NATIVE_FLOAT;
    case DType::kFloat64: return H5T_NATIVE_DOUBLE;
    case DType::kInt32: return H5T_NATIVE_INT32;
    case DType::kInt64: return H5T_NATIVE_INT64;
    case DType::kUInt8: return H5T_NATIVE_UINT8;
    case DType::kFloat16:
    case DType::kString: break;  // no native type: read float16 as float, strings as char*
  }
  return -1;
}

bool MapType(hid_t type, DType* out) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_STRING) {
    *out = DType::kString;
    return true;
  }
  if (cls == H5T_FLOAT) {
    if (size == 2) { *out = DType::kFloat16; return true; }
    if (size == 4) { *out = DType::kFloat32; return true; }
    if (size == 8) { *out = DType::kFloat64; return true; }
  } else if (cls == H5T_INTEGER) {
    const H5T_sign_t sign = H5Tget_sign(type);
    if (sign == H5T_SGN_2 && size == 4) { *out = DType::kInt32; return true; }
    if (sign == H5T_SGN_2 && size == 8) { *out = DType::kInt64; return true; }
    if (sign == H5T_SGN_NONE && size == 1) { *out = DType::kUInt8; return true; }
  }
  return false;
}

}  // namespace facebatch::io::hdf5::detail
