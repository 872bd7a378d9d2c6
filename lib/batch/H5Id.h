#pragma once
// Internal to lib/batch: an HDF5 identifier closed on scope exit.
#include <hdf5.h>

namespace facebatch::batch::h5 {

struct Id {
  hid_t id;
  herr_t (*close)(hid_t);
  Id(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Id() {
    if (id >= 0) close(id);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  Id& operator=(Id&& other) noexcept {
    if (this != &other) {
      if (id >= 0) close(id);
      id = other.id;
      close = other.close;
      other.id = -1;
    }
    return *this;
  }
};

}  // namespace facebatch::batch::h5
