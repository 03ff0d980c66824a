// The avx512 level's quantized kernels (quant_kernels.h): Q8_0/Q4_0 blocks widened to float32 in
// registers and multiplied with FMA. CMakeLists.txt compiles this file alone with AVX-512 F/BW/VL/DQ
// flags. As in simd_generic.h, nothing here may call an inline function of another header (quant.h's
// QuantMatrix::row_bytes included): a weak symbol compiled for AVX-512 could be picked for the whole
// program.
#include <immintrin.h>

#include "kernels/quant_kernels.h"

namespace pg::avx512 {
namespace {

constexpr int64_t kBlock = 32;
constexpr int64_t kPrefetchBytes = 4096;  // hardware prefetchers stop at page boundaries (docs/kernels.md)

int64_t block_bytes(QuantType t) { return t == QuantType::Q8_0 ? 34 : 18; }

// The block's f16 scale in every lane (broadcast as f16, then widened: fewer instructions than a scalar
// conversion and a float broadcast).
__m512 scale_of(const uint8_t* block) {
  uint16_t h;
  __builtin_memcpy(&h, block, 2);
  return _mm512_cvtph_ps(_mm256_set1_epi16(short(h)));
}

// The block's 32 weights without the scale, as two vectors of float32 integers (q[0..15], q[16..31]).
template <QuantType T>
void block_integers(const uint8_t* block, __m512& lo, __m512& hi) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  if constexpr (T == QuantType::Q8_0) {
    lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
    hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18))));
  } else {
    const __m128i nibble = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    const __m128i low = _mm_sub_epi8(_mm_and_si128(bytes, nibble), eight);
    const __m128i high = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), eight);
    lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(low));
    hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(high));
  }
}

// out[m] = Σ_b d_b · Σ_j q_bj · x[m][32 b + j] for one weight row; two accumulators per x row (even and
// odd blocks) so that consecutive blocks do not wait on each other.
template <QuantType T, int MM>
void gemv_row(const uint8_t* row, int64_t blocks, const float* x, int64_t ldx, float out[MM]) {
  constexpr int64_t kBytes = T == QuantType::Q8_0 ? 34 : 18;
  __m512 acc[MM][2];
  for (int m = 0; m < MM; ++m) acc[m][0] = acc[m][1] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const uint8_t* ahead = row + b * kBytes + kPrefetchBytes;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    if constexpr (2 * kBytes > 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
    for (int u = 0; u < 2; ++u) {
      const uint8_t* block = row + (b + u) * kBytes;
      __m512 lo, hi;
      block_integers<T>(block, lo, hi);
      const __m512 d = scale_of(block);
      for (int m = 0; m < MM; ++m) {
        const float* xb = x + m * ldx + (b + u) * kBlock;
        const __m512 s = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(xb)));
        acc[m][u] = _mm512_fmadd_ps(d, s, acc[m][u]);
      }
    }
  }
  if (b < blocks) {
    const uint8_t* block = row + b * kBytes;
    __m512 lo, hi;
    block_integers<T>(block, lo, hi);
    const __m512 d = scale_of(block);
    for (int m = 0; m < MM; ++m) {
      const float* xb = x + m * ldx + b * kBlock;
      const __m512 s = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(xb)));
      acc[m][0] = _mm512_fmadd_ps(d, s, acc[m][0]);
    }
  }
  for (int m = 0; m < MM; ++m) out[m] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1]));
}

template <QuantType T, int MM>
void gemv(const float* x, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kBlock, row_bytes = blocks * block_bytes(T);
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_weight_row(W, row_bytes, [&](int64_t n) {
    float out[MM];
    gemv_row<T, MM>(base + n * row_bytes, blocks, x, W.cols, out);
    for (int m = 0; m < MM; ++m) y[m * W.rows + n] = out[m] + (bias ? bias[n] : 0.f);
  });
}

template <QuantType T>
void gemv_rows(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  switch (M) {
    case 1: return gemv<T, 1>(x, W, bias, y);
    case 2: return gemv<T, 2>(x, W, bias, y);
    case 3: return gemv<T, 3>(x, W, bias, y);
    default: return gemv<T, 4>(x, W, bias, y);
  }
}

// f(value vector, element offset) for the 2 vectors of each block of rows [r0, r0 + count).
template <QuantType T, class Store>
void for_each_dequantized(const QuantMatrix& W, int64_t r0, int64_t count, Store store) {
  const int64_t blocks = W.cols / kBlock, bytes = block_bytes(T);
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + r0 * blocks * bytes;
  for (int64_t i = 0; i < count * blocks; ++i) {
    const uint8_t* block = base + i * bytes;
    __m512 lo, hi;
    block_integers<T>(block, lo, hi);
    const __m512 d = scale_of(block);
    store(_mm512_mul_ps(d, lo), i * kBlock);
    store(_mm512_mul_ps(d, hi), i * kBlock + 16);
  }
}

// Round to nearest even bfloat16 (the values are finite): the high halves of bits + 0x7fff + lsb.
__m256i to_bf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

}  // namespace

void quant_gemv(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  if (W.type == QuantType::Q8_0) gemv_rows<QuantType::Q8_0>(x, M, W, bias, y);
  else gemv_rows<QuantType::Q4_0>(x, M, W, bias, y);
}

void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  auto store = [dst](__m512 v, int64_t at) { _mm512_storeu_ps(dst + at, v); };
  if (W.type == QuantType::Q8_0) for_each_dequantized<QuantType::Q8_0>(W, r0, count, store);
  else for_each_dequantized<QuantType::Q4_0>(W, r0, count, store);
}

void dequantize_rows_bf16(const QuantMatrix& W, int64_t r0, int64_t count, uint16_t* dst) {
  auto store = [dst](__m512 v, int64_t at) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + at), to_bf16(v));
  };
  if (W.type == QuantType::Q8_0) for_each_dequantized<QuantType::Q8_0>(W, r0, count, store);
  else for_each_dequantized<QuantType::Q4_0>(W, r0, count, store);
}

}  // namespace pg::avx512
