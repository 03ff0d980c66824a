// Matrix multiplication against stored weights: y[M, N] = x[M, K] · Wᵀ (+ bias), W = [N, K]. The model
// calls `linear`, which takes a Weight of any storage; `matmul` (dense) and quant_matmul (quant.h) are the
// storage-specific products it dispatches to.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace pg {

// The most x rows (decode, batched across requests) for which matmul and quant_matmul compute every row
// exactly as a call with that row alone would: the same kernel and the same order of additions for any M up
// to this, so that batching requests cannot change their answers. Larger M (prefill) may use GEMMs.
constexpr int64_t kRowIndependentRows = 16;

// Optimized and dispatched by instruction set (cpu_features.h; docs/kernels.md): multithreaded
// (OpenMP) matrix-vector products for M <= kRowIndependentRows (decode), blocked GEMMs above; bf16 weights times
// bf16-exact x use bf16 products (AMX tiles or vdpbf16ps), which are exact, so every level accumulates exact products in
// float32 and differs from matmul_reference only by the order of the additions (and, on the bf16
// product paths, by treating subnormal products as zero).
// Up to kRowIndependentRows rows, every row of y is bit for bit what the same call with that x row alone
// gives, so requests decoded in one batch get the answers they get alone.
// x is row-major [M, W.cols]; y is row-major [M, W.rows]; bias may be null.
void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

// Plain reference twin: one dot product per output, in index order.
void matmul_reference(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

// How the rows of one product relate. Independent: rows of separate requests (a batched decoding step),
// each of which must come out bit for bit as it would alone, for any M. Shared: the rows of one sequence
// (or of prefills, whose results may differ from one-at-a-time by the order of additions), free to take
// the fastest path (a GEMM).
enum class Rows { Shared, Independent };

// y[M, W.rows()] = x[M, W.cols()] · Wᵀ (+ bias) for a weight of any storage: matmul for dense weights,
// quant_matmul (quant.h) for block-quantized ones. With Rows::Independent more than kRowIndependentRows
// rows run in passes of that many, so every row of y is what the call with that x row alone gives.
// x is row-major [M, W.cols()]; y is row-major [M, W.rows()]; bias may be null.
void linear(const float* x, int64_t M, const Weight& W, const float* bias, float* y, Rows rows = Rows::Shared);

// Plain reference twin: matmul_reference or quant_matmul_reference.
void linear_reference(const float* x, int64_t M, const Weight& W, const float* bias, float* y);

// Row r of W in float32 (widened or dequantized, exact): an embedding lookup. dst holds W.cols() values.
void weight_row_f32(const Weight& W, int64_t r, float* dst);

}  // namespace pg
