// Tensor shapes as text, for error messages ("[2048, 16384]").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

inline std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace pg
