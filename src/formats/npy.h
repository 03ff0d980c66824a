// NumPy .npy files (format 1.0/2.0, C order): float32 writing, float32/uint8 reading.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
NpyArray read_npy(const std::string& path);  // throws pg::Error

}  // namespace pg
