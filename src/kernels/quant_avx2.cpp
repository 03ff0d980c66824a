// The avx2 level's quantized kernels (quant_kernels.h): Q8_0/Q4_0 blocks widened to float32 in
// registers and multiplied with FMA, 8 lanes. CMakeLists.txt compiles this file alone with AVX2 + FMA +
// F16C flags. As in simd_generic.h, nothing here may call an inline function of another header.
#include <immintrin.h>

#include "kernels/quant_kernels.h"

namespace pg::avx2 {
namespace {

constexpr int64_t kBlock = 32;
constexpr int64_t kPrefetchBytes = 4096;  // hardware prefetchers stop at page boundaries (docs/kernels.md)

int64_t block_bytes(QuantType t) { return t == QuantType::Q8_0 ? 34 : 18; }

__m256 scale_of(const uint8_t* block) {
  uint16_t h;
  __builtin_memcpy(&h, block, 2);
  return _mm256_set1_ps(_cvtsh_ss(h));
}

// The block's 32 weights without the scale, as four vectors of float32 integers (q[8 v .. 8 v + 7]).
template <QuantType T>
void block_integers(const uint8_t* block, __m256 q[4]) {
  __m128i first, second;  // q[0..15], q[16..31] as int8
  if constexpr (T == QuantType::Q8_0) {
    first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    second = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18));
  } else {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
    const __m128i nibble = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    first = _mm_sub_epi8(_mm_and_si128(bytes, nibble), eight);
    second = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), nibble), eight);
  }
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

// out[m] = Σ_b d_b · Σ_j q_bj · x[m][32 b + j] for one weight row; even and odd blocks accumulate apart.
template <QuantType T, int MM>
void gemv_row(const uint8_t* row, int64_t blocks, const float* x, int64_t ldx, float out[MM]) {
  constexpr int64_t kBytes = T == QuantType::Q8_0 ? 34 : 18;
  __m256 acc[MM][2];
  for (int m = 0; m < MM; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  auto step = [&](int64_t b, int slot) {
    const uint8_t* block = row + b * kBytes;
    __m256 q[4];
    block_integers<T>(block, q);
    const __m256 d = scale_of(block);
    for (int m = 0; m < MM; ++m) {
      const float* xb = x + m * ldx + b * kBlock;
      __m256 s = _mm256_mul_ps(q[0], _mm256_loadu_ps(xb));
      for (int v = 1; v < 4; ++v) s = _mm256_fmadd_ps(q[v], _mm256_loadu_ps(xb + 8 * v), s);
      acc[m][slot] = _mm256_fmadd_ps(d, s, acc[m][slot]);
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

template <QuantType T>
void dequantize(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  const int64_t blocks = W.cols / kBlock, bytes = block_bytes(T);
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + r0 * blocks * bytes;
  for (int64_t i = 0; i < count * blocks; ++i) {
    const uint8_t* block = base + i * bytes;
    __m256 q[4];
    block_integers<T>(block, q);
    const __m256 d = scale_of(block);
    for (int v = 0; v < 4; ++v) _mm256_storeu_ps(dst + i * kBlock + 8 * v, _mm256_mul_ps(d, q[v]));
  }
}

}  // namespace

void quant_gemv(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  if (W.type == QuantType::Q8_0) gemv_rows<QuantType::Q8_0>(x, M, W, bias, y);
  else gemv_rows<QuantType::Q4_0>(x, M, W, bias, y);
}

void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  if (W.type == QuantType::Q8_0) dequantize<QuantType::Q8_0>(W, r0, count, dst);
  else dequantize<QuantType::Q4_0>(W, r0, count, dst);
}

}  // namespace pg::avx2
