// Tensor shapes: element counts checked against overflow, and shapes as text for error messages
// ("[2048, 16384]").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

// The number of elements of `shape` times `element_bytes`, or -1 when a dimension is negative or the
// product does not fit in int64 (sizes read from a file are checked with this before anything is sized
// by them).
inline int64_t checked_byte_count(const std::vector<int64_t>& shape, int64_t element_bytes) {
  int64_t n = element_bytes;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return -1;
  return n;
}

inline std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace pg
