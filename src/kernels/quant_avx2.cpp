// The avx2 level's quantized kernels (quant_kernels.h). Decode: x quantized per 32-block to int8, then each
// block's 32 products are one `vpmaddubsw` (|w| as unsigned bytes times x with w's sign) and one `vpmaddwd`,
// scaled by d_w · d_x in float32. Prefill: blocks widened to float32 for the GEMM. docs/quantization.md has the
// measurement that chose the int8 route. CMakeLists.txt compiles this file alone with AVX2 + FMA + F16C flags.
// As in simd_generic.h, nothing here may call an inline function of another header.
#include <immintrin.h>

#include "kernels/quant_kernels.h"

namespace pg::avx2 {
namespace {

constexpr int64_t kBlock = 32;
constexpr int64_t kPrefetchBytes = 4096;  // hardware prefetchers stop at page boundaries (docs/kernels.md)

int64_t block_bytes(QuantType t) { return t == QuantType::Q8_0 ? 34 : 18; }

// The block's float16 scale d.
float block_scale(const uint8_t* block) {
  uint16_t h;
  __builtin_memcpy(&h, block, 2);
  return _cvtsh_ss(h);
}

// The block's 32 weights without the scale as signed bytes, in order (Q4_0: nibble - 8).
template <QuantType T>
__m256i block_bytes_s8(const uint8_t* block) {
  if constexpr (T == QuantType::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
  } else {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m128i nibble = _mm_set1_epi8(0x0f);
    const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(bytes, nibble)),
                                                 _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), 1);
    return _mm256_sub_epi8(both, _mm256_set1_epi8(8));
  }
}

// The block's 32 weights without the scale, as four vectors of float32 integers (q[8 v .. 8 v + 7]).
template <QuantType T>
void block_integers(const uint8_t* block, __m256 q[4]) {
  const __m256i bytes = block_bytes_s8<T>(block);
  const __m128i first = _mm256_castsi256_si128(bytes), second = _mm256_extracti128_si256(bytes, 1);
  q[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(first));
  q[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(first, 8)));
  q[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(second));
  q[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(second, 8)));
}

float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// out[m] = Σ_b d_b · d_x,mb · Σ_j w_bj · q_mbj for one weight row. vpmaddubsw multiplies unsigned by signed
// bytes, so |w| (as unsigned: -128 becomes 128) meets q with w's sign (vpsignb; zero where w is zero); a pair sum
// is at most 2 · 128 · 127 < 2^15, so it never saturates. Even and odd blocks accumulate apart.
template <QuantType T, int MM>
void gemv_row(const uint8_t* row, int64_t blocks, const int8_t* q, const float* dx, int64_t ldq, float out[MM]) {
  constexpr int64_t kBytes = T == QuantType::Q8_0 ? 34 : 18;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MM][2];
  for (int m = 0; m < MM; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  auto step = [&](int64_t b, int slot) {
    const uint8_t* block = row + b * kBytes;
    const __m256i w = block_bytes_s8<T>(block);
    const __m256i magnitude = _mm256_sign_epi8(w, w);
    const float d = block_scale(block);
    for (int m = 0; m < MM; ++m) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + m * ldq + b * kBlock));
      const __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xq, w));
      const __m256 sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, ones));
      acc[m][slot] = _mm256_fmadd_ps(sums, _mm256_set1_ps(d * dx[m * blocks + b]), acc[m][slot]);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const uint8_t* ahead = row + b * kBytes + kPrefetchBytes;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    if constexpr (2 * kBytes > 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < blocks) step(b, 0);
  for (int m = 0; m < MM; ++m) out[m] = horizontal_sum(_mm256_add_ps(acc[m][0], acc[m][1]));
}

template <QuantType T, int MM>
void gemv(const int8_t* q, const float* dx, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kBlock, row_bytes = blocks * block_bytes(T);
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_weight_row(W, row_bytes, [&](int64_t n) {
    float out[MM];
    gemv_row<T, MM>(base + n * row_bytes, blocks, q, dx, W.cols, out);
    for (int m = 0; m < MM; ++m) y[m * W.rows + n] = out[m] + (bias ? bias[n] : 0.f);
  });
}

template <QuantType T>
void gemv_rows(const int8_t* q, const float* dx, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  switch (M) {
    case 1: return gemv<T, 1>(q, dx, W, bias, y);
    case 2: return gemv<T, 2>(q, dx, W, bias, y);
    case 3: return gemv<T, 3>(q, dx, W, bias, y);
    default: return gemv<T, 4>(q, dx, W, bias, y);
  }
}

template <QuantType T>
void dequantize(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  const int64_t blocks = W.cols / kBlock, bytes = block_bytes(T);
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + r0 * blocks * bytes;
  for (int64_t i = 0; i < count * blocks; ++i) {
    const uint8_t* block = base + i * bytes;
    __m256 q[4];
    block_integers<T>(block, q);
    const __m256 d = _mm256_set1_ps(block_scale(block));
    for (int v = 0; v < 4; ++v) _mm256_storeu_ps(dst + i * kBlock + 8 * v, _mm256_mul_ps(d, q[v]));
  }
}

}  // namespace

void quantize_activations(const float* x, int64_t blocks, int8_t* q, float* d) {
  const __m256 sign_bit = _mm256_set1_ps(-0.f);
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + b * kBlock + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[i]));
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    // vmaxps drops a NaN operand; a NaN scale keeps it, so a NaN in x gives NaN outputs as with float x.
    d[b] = _mm256_movemask_ps(nan) ? __builtin_nanf("") : _mm_cvtss_f32(m4) / 127.f;
    const __m256 inv = _mm256_set1_ps(d[b] != 0.f ? 1.f / d[b] : 0.f);
    // Nearest, ties to even (the default rounding mode), as the avx512vnni level's quantize_activations.
    __m256i i32[4];
    for (int i = 0; i < 4; ++i) i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
    // packs work within 128-bit halves: the bytes come out as 0-3, 8-11, 16-19, 24-27, 4-7, ... (groups of 4
    // values); the permutation puts the groups back in order.
    const __m256i i16 = _mm256_packs_epi32(i32[0], i32[1]), i16b = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i i8 = _mm256_packs_epi16(i16, i16b);
    const __m256i ordered = _mm256_permutevar8x32_epi32(i8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kBlock), ordered);
  }
}

void quant_gemv_int8(const int8_t* q, const float* dx, int64_t M, const QuantMatrix& W, const float* bias,
                     float* y) {
  if (W.type == QuantType::Q8_0) gemv_rows<QuantType::Q8_0>(q, dx, M, W, bias, y);
  else gemv_rows<QuantType::Q4_0>(q, dx, M, W, bias, y);
}

void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  if (W.type == QuantType::Q8_0) dequantize<QuantType::Q8_0>(W, r0, count, dst);
  else dequantize<QuantType::Q4_0>(W, r0, count, dst);
}

}  // namespace pg::avx2
