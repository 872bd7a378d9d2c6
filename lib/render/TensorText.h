#pragma once
// Tensor sizes as text for error messages, shared by every torch module.
#include <ATen/Tensor.h>

#include <string>

namespace facebatch::render {

/// "[2, 3, 4]".
std::string ShapeString(at::IntArrayRef sizes);
/// "[2, 3, 4]", or "undefined" for an undefined tensor.
std::string ShapeString(const at::Tensor& t);

}  // namespace facebatch::render
