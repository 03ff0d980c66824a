// Dense matrix multiplication against stored weights: y[M, N] = x[M, K] · Wᵀ (+ bias), W = [N, K].
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

}  // namespace pg
