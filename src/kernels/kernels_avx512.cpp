// The avx512 kernel level: simd_generic.h's kernels on AVX-512 F/BW/VL/DQ, 16-lane vectors.
// CMakeLists.txt compiles this file alone with the matching target flags.
#include "kernels/simd_avx512.h"
#include "kernels/simd_generic.h"

namespace pg::avx512 {

void gemm(const GemmArgs& args) { gemm_impl<V512>(args, true); }

void attention(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& shape, float* out) {
  attention_impl<V512>(q, T, q_start, k, v, n_keys, shape, out);
}

void round_inplace(float* x, size_t n, DType t) { round_inplace_impl<V512>(x, n, t); }

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
              float* y) {
  rms_norm_impl<V512>(x, rows, dim, w, scale_offset, eps, y);
}

void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                float* y) {
  layer_norm_impl<V512>(x, rows, dim, w, b, eps, y);
}

void gelu_tanh(float* x, int64_t n) { gelu_tanh_impl<V512>(x, n); }

void gelu_tanh_mul(float* a, const float* b, int64_t n, DType act) { gelu_tanh_mul_impl<V512>(a, b, n, act); }

}  // namespace pg::avx512
