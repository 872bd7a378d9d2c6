#include "render/TensorText.h"

namespace facebatch::render {

std::string ShapeString(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

std::string ShapeString(const at::Tensor& t) { return t.defined() ? ShapeString(t.sizes()) : "undefined"; }

}  // namespace facebatch::render
