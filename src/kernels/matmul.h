// Dense matrix multiplication against stored weights: y[M, N] = x[M, K] · Wᵀ (+ bias), W = [N, K].
#pragma once
#include <cstdint>

#include "kernels/dtype.h"

namespace pg {

// Optimized: register-tiled, multithreaded (OpenMP), instruction set chosen at run time.
// x is row-major [M, W.cols]; y is row-major [M, W.rows]; bias may be null.
void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

// Plain reference twin: one dot product per output, in index order.
void matmul_reference(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);

}  // namespace pg
