// NumPy .npy files (format 1.0/2.0, C order): float32 writing, float32/uint8 reading.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "paligemma/system.h"

namespace pg {

struct NpyArray {
  std::string dtype;  // "<f4" or "|u1"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  size_t count() const {
    size_t n = 1;
    for (int64_t d : shape) n *= size_t(d);
    return n;
  }
  std::vector<float> as_f32() const;  // for "<f4"
};

NpyArray read_npy(const std::string& path);  // throws pg::Error

}  // namespace pg
