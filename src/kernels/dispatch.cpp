// The public optimized kernels: each forwards to the active instruction-set level (cpu_features.h).
// The scalar level is the portable code: matmul.cpp's tiled kernel and the `_reference` twins.
#include <cstring>
#include <new>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/isa_kernels.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"

namespace pg {

void throw_out_of_memory() { throw std::bad_alloc(); }

bool all_bf16_exact(const float* x, int64_t M, int64_t K, int64_t ldx) {
  uint32_t low_bits = 0;
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    for (int64_t k = 0; k < K; ++k) {
      uint32_t u;
      std::memcpy(&u, row + k, 4);
      low_bits |= u & 0xffffu;
    }
    if (low_bits != 0) return false;
  }
  return true;
}

#if defined(PG_X86_KERNELS)

void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y) {
  GemmArgs a;
  a.x = x;
  a.ldx = W.cols;
  a.w = W.data;
  a.w_dtype = W.dtype;
  a.ldw = W.cols;
  a.bias = bias;
  a.y = y;
  a.ldy = W.rows;
  a.M = M;
  a.N = W.rows;
  a.K = W.cols;
  switch (active_isa()) {
    case Isa::Amx: return amx::gemm(a);
    case Isa::Avx512Bf16: return avx512bf16::gemm(a);
    case Isa::Avx512: return avx512::gemm(a);
    case Isa::Avx2: return avx2::gemm(a);
    case Isa::Scalar: break;
  }
  scalar::matmul(x, M, W, bias, y);
}

// The levels above avx512 differ from it only in the matrix product.
#define PG_DISPATCH_SIMD(function, ...)            \
  switch (active_isa()) {                          \
    case Isa::Amx:                                 \
    case Isa::Avx512Bf16:                          \
    case Isa::Avx512: return avx512::function(__VA_ARGS__); \
    case Isa::Avx2: return avx2::function(__VA_ARGS__);     \
    case Isa::Scalar: break;                       \
  }

#else  // only the scalar level exists

void matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y) {
  scalar::matmul(x, M, W, bias, y);
}

#define PG_DISPATCH_SIMD(function, ...)

#endif

void linear(const float* x, int64_t M, const Weight& W, const float* bias, float* y, Rows rows) {
  if (M <= 0) return;
  const int64_t pass = rows == Rows::Independent ? kRowIndependentRows : M;
  for (int64_t m0 = 0; m0 < M; m0 += pass) {
    const int64_t count = M - m0 < pass ? M - m0 : pass;
    const float* xs = x + m0 * W.cols();
    float* ys = y + m0 * W.rows();
    if (const QuantMatrix* q = W.quantized()) quant_matmul(xs, count, *q, bias, ys);
    else matmul(xs, count, *W.dense(), bias, ys);
  }
}

void linear_reference(const float* x, int64_t M, const Weight& W, const float* bias, float* y) {
  if (const QuantMatrix* q = W.quantized()) quant_matmul_reference(x, M, *q, bias, y);
  else matmul_reference(x, M, *W.dense(), bias, y);
}

void weight_row_f32(const Weight& W, int64_t r, float* dst) {
  if (const QuantMatrix* q = W.quantized()) dequantize_row(q->row(r), q->cols, q->type, dst);
  else to_f32(W.dense()->row(r), W.dense()->dtype, dst, size_t(W.cols()));
}

void attention(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& shape, float* out) {
  PG_DISPATCH_SIMD(attention, q, T, q_start, k, v, n_keys, shape, out)
  attention_reference(q, T, q_start, k, v, n_keys, shape, out);
}

void round_inplace(float* x, size_t n, DType t) {
  if (t == DType::F32) return;
  PG_DISPATCH_SIMD(round_inplace, x, n, t)
  round_inplace_reference(x, n, t);
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps, float* y) {
  PG_DISPATCH_SIMD(rms_norm, x, rows, dim, w, scale_offset, eps, y)
  rms_norm_reference(x, rows, dim, w, scale_offset, eps, y);
}

void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps, float* y) {
  PG_DISPATCH_SIMD(layer_norm, x, rows, dim, w, b, eps, y)
  layer_norm_reference(x, rows, dim, w, b, eps, y);
}

void gelu_tanh(float* x, int64_t n) {
  PG_DISPATCH_SIMD(gelu_tanh, x, n)
  gelu_tanh_reference(x, n);
}

void gelu_tanh_mul(float* a, const float* b, int64_t n, DType act) {
  PG_DISPATCH_SIMD(gelu_tanh_mul, a, b, n, act)
  gelu_tanh_mul_reference(a, b, n, act);
}

}  // namespace pg
