// The vocabulary every layer shares: views of stored tensors (dense in any dtype, or block-quantized) and
// the description a file reader hands the model. Nothing here computes or owns memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace pg {

// A read-only row-major matrix [rows, cols] in stored precision, e.g. a linear layer's weight
// [out_features, in_features] memory-mapped from a checkpoint.
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;

  const void* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * size_t(cols) * dtype_size(dtype);
  }
};

// Block-quantized storage (ggml's Q8_0 and Q4_0, kernels/quant.h describes the block layout).
enum class QuantType { Q8_0, Q4_0 };

constexpr int64_t kQuantBlock = 32;

inline size_t quant_block_bytes(QuantType t) { return t == QuantType::Q8_0 ? 34 : 18; }
inline const char* quant_type_name(QuantType t) { return t == QuantType::Q8_0 ? "q8_0" : "q4_0"; }

// A read-only row-major quantized matrix [rows, cols], e.g. memory-mapped from a quantized file.
struct QuantMatrix {
  const void* data = nullptr;
  QuantType type = QuantType::Q8_0;
  int64_t rows = 0;
  int64_t cols = 0;  // a multiple of kQuantBlock

  size_t row_bytes() const { return size_t(cols / kQuantBlock) * quant_block_bytes(type); }
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + size_t(r) * row_bytes(); }
};

// A weight matrix [rows, cols] as it is stored: dense in any dtype, or block-quantized. The kernels
// (kernels/matmul.h: linear, weight_row_f32) dispatch on which; the model never asks.
class Weight {
 public:
  Weight() = default;
  Weight(const MatrixView& dense) : storage_(dense) {}
  Weight(const QuantMatrix& quantized) : storage_(quantized) {}

  int64_t rows() const { return std::visit([](const auto& m) { return m.rows; }, storage_); }
  int64_t cols() const { return std::visit([](const auto& m) { return m.cols; }, storage_); }

  // For kernels: the dense view, or nullptr when the weight is quantized (and the reverse).
  const MatrixView* dense() const { return std::get_if<MatrixView>(&storage_); }
  const QuantMatrix* quantized() const { return std::get_if<QuantMatrix>(&storage_); }

 private:
  std::variant<MatrixView, QuantMatrix> storage_;
};

// What a checkpoint reader hands the model: a tensor by canonical (hub legacy) name, or nullptr.
struct StoredTensor {
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  std::optional<QuantType> quant = std::nullopt;  // set: block-quantized ([rows, cols]), dtype unused
};
using TensorLookup = std::function<const StoredTensor*(const std::string& canonical_name)>;

}  // namespace pg
