#include "fit/TensorChecks.h"

#include "core/Error.h"

#include <torch/torch.h>

#include <fmt/format.h>

#include <vector>

namespace facebatch::fit {


namespace {

std::string DimsString(std::initializer_list<int64_t> dims) {
  static const char* kNames[] = {"B", "C", "H", "W", "E", "F"};
  std::string s = "[";
  int i = 0;
  for (int64_t d : dims) {
    s += (i ? ", " : "") + (d < 0 ? std::string(kNames[i % 6]) : std::to_string(d));
    ++i;
  }
  return s + "]";
}

void CheckSizes(const char* fn, const char* name, const at::Tensor& t,
                std::initializer_list<int64_t> dims, const char* kind) {
  bool ok = t.dim() == static_cast<int64_t>(dims.size());
  if (ok) {
    int64_t i = 0;
    for (int64_t d : dims) {
      ok = ok && (d < 0 || t.size(i) == d);
      ++i;
    }
  }
  if (!ok) {
    throw Error(fmt::format("{}: {} must be a {} tensor {}, got {}", fn, name, kind,
                            DimsString(dims), ShapeString(t)));
  }
}

}  // namespace

void CheckFloat(const char* fn, const char* name, const at::Tensor& t,
                std::initializer_list<int64_t> dims) {
  if (!t.defined()) throw Error(fmt::format("{}: {} is undefined", fn, name));
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble) {
    throw Error(fmt::format("{}: {} must be float32 or float64, got {}", fn, name,
                            c10::toString(t.scalar_type())));
  }
  CheckSizes(fn, name, t, dims, "float");
}

void CheckMask(const char* fn, const char* name, const at::Tensor& t,
               std::initializer_list<int64_t> dims) {
  if (!t.defined()) throw Error(fmt::format("{}: {} is undefined", fn, name));
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble &&
      t.scalar_type() != at::kBool) {
    throw Error(fmt::format("{}: {} must be bool, float32 or float64, got {}", fn, name,
                            c10::toString(t.scalar_type())));
  }
  CheckSizes(fn, name, t, dims, "bool/float");
}

void CheckSameDevice(const char* fn, const char* name, const at::Tensor& t, const at::Tensor& ref) {
  if (t.device() != ref.device()) {
    throw Error(fmt::format("{}: {} is on {} but the other inputs are on {}", fn, name,
                            t.device().str(), ref.device().str()));
  }
}

void CheckUVMask(const char* fn, const at::Tensor& mask, const at::Tensor& map) {
  if (!mask.defined()) throw Error(fmt::format("{}: mask is undefined", fn));
  if (mask.scalar_type() != at::kBool || mask.dim() != 2 || mask.size(0) != map.size(-2) ||
      mask.size(1) != map.size(-1)) {
    throw Error(fmt::format("{}: mask must be a bool tensor [U, V] = [{}, {}], got {} {}", fn,
                            map.size(-2), map.size(-1), c10::toString(mask.scalar_type()),
                            ShapeString(mask)));
  }
}

}  // namespace facebatch::fit
