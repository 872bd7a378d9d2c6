#pragma once
// Private to lib/io (Hdf5.cpp, Hdf5Rows.cpp, Hdf5Internal.cpp): what the tree API and the
// row-streaming API share over the HDF5 C API. Nothing outside lib/io includes this header
// (it pulls in <hdf5.h>); the public headers are io/Hdf5.h and io/Hdf5Rows.h.
#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <string>

#include "io/Hdf5.h"

namespace facebatch::io::hdf5::detail {

/// Opens the library once: no clean-up at exit (after a failed write, a full disk, HDF5's
/// atexit handler flushes the half-closed file again and crashes; every file is closed
/// explicitly), and no error printing (every failure is reported as an InputError).
void Init();

/// Owns one hid_t and closes it with the right function on scope exit.
struct Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Id() { Reset(); }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id(Id&& other) noexcept : id(other.id), close(other.close) { other.id = -1; }
  Id& operator=(Id&& other) noexcept {
    if (this != &other) {
      Reset();
      id = other.id;
      close = other.close;
      other.id = -1;
    }
    return *this;
  }
  explicit operator bool() const { return id >= 0; }
  /// Gives up ownership (the caller closes).
  hid_t Release() {
    const hid_t i = id;
    id = -1;
    return i;
  }

 private:
  void Reset() {
    if (id >= 0 && close) close(id);
    id = -1;
  }
};

/// A shared handle (the tree API's File and Group copies): closed when the last copy goes.
std::shared_ptr<int64_t> Share(hid_t id, herr_t (*close)(hid_t));

/// Throws InputError(file, "<object>: <problem>") ("<problem>" alone for an empty object).
[[noreturn]] void Fail(const std::string& file, const std::string& object, const std::string& problem);
/// Fail for a failed write: the problem gets core/Disk.h's DiskDiagnosis of the file (full,
/// read-only) when it can tell.
[[noreturn]] void WriteFail(const std::string& file, const std::string& object, const std::string& problem);

/// The on-disk type of an element type (little-endian IEEE / two's complement; float16 as
/// the IEEE half type h5py and numpy read; kString a variable-length UTF-8 string). A new
/// type id: the caller closes it (Id with H5Tclose).
hid_t NewFileType(DType t);
/// A variable-length UTF-8 string type (file and memory type of string data and attributes).
hid_t NewStringType();
/// The native memory type of a numeric element type other than float16 (no new id: never close).
hid_t NativeType(DType t);
/// The element type of a dataset's type; false when it is none of DType's.
bool MapType(hid_t type, DType* out);

}  // namespace facebatch::io::hdf5::detail
