// Dense matrix multiplication against stored weights: y[M, N] = x[M, K] · Wᵀ (+ bias), W = [N, K].
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pg {

// Optimized and dispatched by instruction set (cpu_features.h; docs/kernels.md): multithreaded
// (OpenMP) matrix-vector products for M <= 4, blocked GEMMs above; bf16 weights times bf16-exact x use
// bf16 products (AMX tiles or vdpbf16ps), which are exact, so every level accumulates exact products in
// float32 and differs from matmul_reference only by the order of the additions (and, on the bf16
// product paths, by treating subnormal products as zero).
// x is row-major [M, W.cols]; y is row-major [M, W.rows]; bias may be null.
void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

// Plain reference twin: one dot product per output, in index order.
void matmul_reference(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

}  // namespace pg
