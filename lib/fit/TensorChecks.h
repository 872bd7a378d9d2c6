#pragma once
// Argument checks with named errors for the fit module's tensor functions
// (nvdiffrast style: every entry checks dtype, shape and device).
#include <ATen/Tensor.h>

#include "render/TensorText.h"

#include <initializer_list>
#include <string>

namespace facebatch::fit {

using render::ShapeString;  // "[2, 3, 4]" or "undefined" (render/TensorText.h)

/// Throws Error("<fn>: <name> must be ...") unless `t` is a defined float32 or
/// float64 tensor whose sizes match `dims` (-1 matches any size).
void CheckFloat(const char* fn, const char* name, const at::Tensor& t,
                std::initializer_list<int64_t> dims);
/// Like CheckFloat but also accepts bool (masks, visibility, weights).
void CheckMask(const char* fn, const char* name, const at::Tensor& t,
               std::initializer_list<int64_t> dims);
/// Throws unless `t` is on the same device as `ref`.
void CheckSameDevice(const char* fn, const char* name, const at::Tensor& t, const at::Tensor& ref);
/// A UV face mask: bool [U, V] matching the last two sizes of `map` (any device).
void CheckUVMask(const char* fn, const at::Tensor& mask, const at::Tensor& map);

}  // namespace facebatch::fit
