// Entry points of the per-instruction-set kernel files (kernels_avx2.cpp, kernels_avx512.cpp,
// kernels_avx512bf16.cpp, kernels_amx.cpp, each compiled with its own target flags). The public kernels
// (matmul, attention, ops, round_inplace) dispatch to them by active_isa() in dispatch.cpp; a level's
// functions may only run where isa_supported() says so.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/attention.h"
#include "core/tensor.h"
#include "kernels/matmul.h"

namespace pg {

// y[m, n] = Σ_k x[m, k] · w[n, k] (+ bias[n]) for m < M, n < N, k < K, on sub-matrices given by their
// first element and leading dimensions (in elements); with `accumulate` the sum is added to y instead
// (and bias is not added). x and y may be given transposed (attention's operands); only the levels'
// `gemm` with float32 weights accepts that.
struct GemmArgs {
  const float* x = nullptr;
  int64_t ldx = 0;
  const void* w = nullptr;
  DType w_dtype = DType::F32;
  int64_t ldw = 0;
  const float* bias = nullptr;
  float* y = nullptr;
  int64_t ldy = 0;
  int64_t M = 0, N = 0, K = 0;
  bool accumulate = false;
  bool x_transposed = false;  // x[m, k] is x[k * ldx + m]
  bool y_transposed = false;  // y[m, n] is y[n * ldy + m]
};

// Throws std::bad_alloc; lives in a portable translation unit so that the instruction-set files emit no
// copy of the exception's inline constructors (see simd_generic.h).
[[noreturn]] void throw_out_of_memory();

// Whether every x value of the M x K block is a bfloat16 value (its low 16 bits are zero), so that
// bf16 x bf16 products are exact in float32.
bool all_bf16_exact(const float* x, int64_t M, int64_t K, int64_t ldx);

namespace scalar {
// Register-tiled portable C++ (matmul.cpp).
void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y);
}  // namespace scalar

namespace avx2 {
void gemm(const GemmArgs& args);  // gemv for M <= kRowIndependentRows, else a blocked FMA GEMM
void attention(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& shape, float* out);
void round_inplace(float* x, size_t n, DType t);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
              float* y);
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                float* y);
void gelu_tanh(float* x, int64_t n);
void gelu_tanh_mul(float* a, const float* b, int64_t n, DType act);
}  // namespace avx2

namespace avx512 {
void gemm(const GemmArgs& args);  // gemv for M <= kRowIndependentRows, else a blocked FMA GEMM
void attention(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& shape, float* out);
void round_inplace(float* x, size_t n, DType t);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
              float* y);
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                float* y);
void gelu_tanh(float* x, int64_t n);
void gelu_tanh_mul(float* a, const float* b, int64_t n, DType act);
}  // namespace avx512

// The bf16-product levels replace only the matrix product; the rest is the avx512 level's.
namespace avx512bf16 {
// vdpbf16ps GEMM; requires bf16 weights and all_bf16_exact(x).
void gemm_bf16(const GemmArgs& args);
// Packs bf16-exact x rows [m0, m0 + count) as bf16 pairs: dst[q * width + j] holds x[m0 + j][2q] (low
// half) and x[m0 + j][2q + 1] (high half) for q < pairs; rows count .. width - 1 are zero. width is a
// multiple of 16.
void pack_bf16_pairs(const float* x, int64_t ldx, int64_t m0, int64_t count, int64_t width, int64_t pairs,
                     uint32_t* dst);
// bf16 weights: for M <= kRowIndependentRows a vdpbf16ps matrix-vector product of the bf16-exact x rows
// (the others as avx512::gemm would), above that gemm_bf16 when all x is bf16-exact; else avx512::gemm.
void gemm(const GemmArgs& args);
}  // namespace avx512bf16

namespace amx {
void gemm(const GemmArgs& args);  // AMX-BF16 tiles where they apply, else avx512bf16::gemm
}  // namespace amx

}  // namespace pg
