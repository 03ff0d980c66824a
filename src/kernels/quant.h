// Block-quantized weight matrices (ggml's Q8_0 and Q4_0 layouts, docs/quantization.md) and their
// matrix products. A row of `cols` weights (cols a multiple of 32) is cols / 32 blocks; block b holds
// weights [32 b, 32 b + 32) as an f16 scale d and 32 integers q, weight = d · q:
//   Q8_0: d, then q[0..31] as int8                                  (34 bytes)
//   Q4_0: d, then 16 bytes; byte j holds q[j] + 8 in its low nibble, q[j + 16] + 8 in its high nibble
//                                                                    (18 bytes)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace pg {

// Quantizes n values (a multiple of kQuantBlock) into n / 32 blocks at dst, rounding as ggml's
// quantize_row_q8_0_ref / quantize_row_q4_0_ref do (ggml-quants.c): Q8_0 d = max|x| / 127,
// q = round(x / d); Q4_0 d = x_m / -8 for the x_m of largest magnitude, q = min(15, trunc(x / d + 8.5)) - 8.
void quantize_row(const float* x, int64_t n, QuantType t, void* dst);

// The n stored weights of blocks at src, d · q in float32 (exact).
void dequantize_row(const void* src, int64_t n, QuantType t, float* dst);

// y[M, W.rows] = x[M, W.cols] · Wᵀ (+ bias). Dispatched by instruction set (cpu_features.h), multithreaded:
// M <= kRowIndependentRows (matmul.h; decode) streams the blocks and multiplies d · Σ q·x in float32, each x row as it
// would be alone (4 rows per pass over the weights); larger M (prefill)
// dequantizes slabs of weight rows and runs the level's GEMM on them, in bfloat16 when x is bf16-exact
// and the level multiplies bf16 (avx512bf16, amx: each weight rounded to bf16 once), else in float32.
void quant_matmul(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y);

// Plain reference twin: dequantize_row, then one dot product per output in index order.
void quant_matmul_reference(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y);

}  // namespace pg
