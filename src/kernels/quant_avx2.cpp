// The avx2 level's quantized kernels (quant_kernels.h). Decode: x quantized per 32-block to int8, then Q8_0's
// 32 products per block are one `vpmaddubsw` (|w| as unsigned bytes times x with w's sign) and one `vpmaddwd`,
// scaled by d_w · d_x in float32; Q4_0 works on two blocks per 256-bit register (x laid out in pairs for it).
// Prefill: blocks widened to float32 for the GEMM. docs/quantization.md has the measurements that chose them.
// CMakeLists.txt compiles this file alone with AVX2 + FMA + F16C flags.
// As in simd_generic.h, nothing here may call an inline function of another header.
#include <immintrin.h>

#include <type_traits>

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

// Q8_0: out[m] = Σ_b d_b · d_x,mb · Σ_j w_bj · q_mbj for one weight row. vpmaddubsw multiplies unsigned by signed
// bytes, so |w| (as unsigned: -128 becomes 128) meets q with w's sign (vpsignb; zero where w is zero); a pair sum
// is at most 2 · 128 · 127 < 2^15, so it never saturates. Even and odd blocks accumulate apart.
template <int MM>
void q8_gemv_row(const uint8_t* row, int64_t blocks, const int8_t* q, const float* dx, int64_t ldq, float out[MM]) {
  constexpr int64_t kBytes = 34;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MM][2];
  for (int m = 0; m < MM; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  auto step = [&](int64_t b, int slot) {
    const uint8_t* block = row + b * kBytes;
    const __m256i w = block_bytes_s8<QuantType::Q8_0>(block);
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
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
    step(b, 0);
    step(b + 1, 1);
  }
  if (b < blocks) step(b, 0);
  for (int m = 0; m < MM; ++m) out[m] = horizontal_sum(_mm256_add_ps(acc[m][0], acc[m][1]));
}

template <int MM>
void q8_gemv(const int8_t* q, const float* dx, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kBlock, row_bytes = blocks * block_bytes(QuantType::Q8_0);
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_weight_row(W, row_bytes, [&](int64_t n) {
    float out[MM];
    q8_gemv_row<MM>(base + n * row_bytes, blocks, q, dx, W.cols, out);
    for (int m = 0; m < MM; ++m) y[m * W.rows + n] = out[m] + (bias ? bias[n] : 0.f);
  });
}

// Q4_0, two blocks A and B at a time: one register holds A's 16 bytes in its low half and B's in its high half,
// so the nibble split, `vpmaddwd`, the conversion to float and the FMA serve both blocks (the per-block work, not
// the memory, bounded the one-block kernel: docs/quantization.md). Nibbles n = w + 8 are the unsigned operand of
// `vpmaddubsw` against x's pairs (quantize_activations_q4_pairs); the offset 8 · Σ x comes off in int32. A lane's
// sum of two `vpmaddubsw` results is at most 2 · 2 · 15 · 128 < 2^15, so nothing saturates. An odd last block
// is a pair whose B half is zero in x, its offsets and scales, and is not read from the weights.
template <int MM>
void q4_gemv_row(const uint8_t* row, int64_t blocks, const int8_t* q, const float* dx, const int32_t* offsets,
                 int64_t pairs, float out[MM]) {
  constexpr int64_t kBytes = 18;
  const __m256i nibble = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  __m256 acc[MM][2];
  for (int m = 0; m < MM; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  auto step = [&](int64_t p, int slot, bool has_b) {
    const uint8_t* a = row + 2 * p * kBytes;
    const uint8_t* b = a + kBytes;
    const __m128i a_bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2));
    const __m256i both = has_b ? _mm256_inserti128_si256(_mm256_castsi128_si256(a_bytes),
                                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2)), 1)
                               : _mm256_zextsi128_si256(a_bytes);
    const __m256i low = _mm256_and_si256(both, nibble), high = _mm256_and_si256(_mm256_srli_epi16(both, 4), nibble);
    uint16_t da, db = 0;
    __builtin_memcpy(&da, a, 2);
    if (has_b) __builtin_memcpy(&db, b, 2);
    // [d_A × 4, d_B × 4]: the lanes of a pair's int32 sums belong to A (0-3) and B (4-7).
    const __m256 dw = _mm256_permutevar8x32_ps(
        _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128(int(da) | (int(db) << 16)))), spread);
    for (int m = 0; m < MM; ++m) {
      const int8_t* xp = q + (m * pairs + p) * 64;
      const __m256i x_low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp));
      const __m256i x_high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + 32));
      const __m256i pairs16 = _mm256_add_epi16(_mm256_maddubs_epi16(low, x_low), _mm256_maddubs_epi16(high, x_high));
      const __m256i sums = _mm256_sub_epi32(
          _mm256_madd_epi16(pairs16, ones),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offsets + (m * pairs + p) * 8)));
      const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(dx + (m * pairs + p) * 8));
      acc[m][slot] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[m][slot]);
    }
  };
  const int64_t full = blocks / 2;
  int64_t p = 0;
  for (; p + 2 <= full; p += 2) {
    const uint8_t* ahead = row + 2 * p * kBytes + kPrefetchBytes;
    _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(ahead + 64), _MM_HINT_T0);
    step(p, 0, true);
    step(p + 1, 1, true);
  }
  if (p < full) step(p++, 0, true);
  if (blocks % 2) step(p, 1, false);
  for (int m = 0; m < MM; ++m) out[m] = horizontal_sum(_mm256_add_ps(acc[m][0], acc[m][1]));
}

template <int MM>
void q4_gemv(const int8_t* q, const float* dx, const int32_t* offsets, const QuantMatrix& W, const float* bias,
             float* y) {
  const int64_t blocks = W.cols / kBlock, row_bytes = blocks * block_bytes(QuantType::Q4_0), pairs = (blocks + 1) / 2;
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_weight_row(W, row_bytes, [&](int64_t n) {
    float out[MM];
    q4_gemv_row<MM>(base + n * row_bytes, blocks, q, dx, offsets, pairs, out);
    for (int m = 0; m < MM; ++m) y[m * W.rows + n] = out[m] + (bias ? bias[n] : 0.f);
  });
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

// Calls fn(std::integral_constant<int, M>) for M = 1..4 (4 for anything larger): the kernels' row count is a
// template argument, so their accumulators stay in registers.
template <class Fn>
void with_row_count(int64_t M, Fn&& fn) {
  switch (M) {
    case 1: return fn(std::integral_constant<int, 1>{});
    case 2: return fn(std::integral_constant<int, 2>{});
    case 3: return fn(std::integral_constant<int, 3>{});
    default: return fn(std::integral_constant<int, 4>{});
  }
}

// One block of x to int8 (32 values in order) and its scale d = max|x| / 127 (NaN when the block holds a NaN).
__m256i quantize_block(const float* x, float& d) {
  const __m256 sign_bit = _mm256_set1_ps(-0.f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[i]));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  // vmaxps drops a NaN operand; a NaN scale keeps it, so a NaN in x gives NaN outputs as with float x.
  d = _mm256_movemask_ps(nan) ? __builtin_nanf("") : _mm_cvtss_f32(m4) / 127.f;
  const __m256 inv = _mm256_set1_ps(d != 0.f ? 1.f / d : 0.f);
  // Nearest, ties to even (the default rounding mode), as the avx512vnni level's quantize_activations.
  __m256i i32[4];
  for (int i = 0; i < 4; ++i) i32[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inv));
  // packs work within 128-bit halves: the bytes come out as 0-3, 8-11, 16-19, 24-27, 4-7, ... (groups of 4
  // values); the permutation puts the groups back in order.
  const __m256i i16 = _mm256_packs_epi32(i32[0], i32[1]), i16b = _mm256_packs_epi32(i32[2], i32[3]);
  const __m256i i8 = _mm256_packs_epi16(i16, i16b);
  return _mm256_permutevar8x32_epi32(i8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void quantize_activations(const float* x, int64_t blocks, int8_t* q, float* d) {
  for (int64_t b = 0; b < blocks; ++b)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * kBlock), quantize_block(x + b * kBlock, d[b]));
}

void quantize_activations_q4_pairs(const float* x, int64_t blocks, int8_t* q, float* dx, int32_t* offsets) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t p = 0; 2 * p < blocks; ++p) {
    float da = 0.f, db = 0.f;
    const __m256i a = quantize_block(x + 2 * p * kBlock, da);
    const __m256i b = 2 * p + 1 < blocks ? quantize_block(x + (2 * p + 1) * kBlock, db) : _mm256_setzero_si256();
    const __m256i low = _mm256_permute2x128_si256(a, b, 0x20), high = _mm256_permute2x128_si256(a, b, 0x31);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + p * 64), low);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + p * 64 + 32), high);
    _mm256_storeu_ps(dx + p * 8, _mm256_setr_m128(_mm_set1_ps(da), _mm_set1_ps(db)));
    // Int32 lane k of the kernel's sums for this pair covers the same x values as lane k of these sums, so 8
    // times each is what the nibbles' excess of 8 adds to that lane.
    const __m256i lane_sums = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, low), ones16),
                                               _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, high), ones16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(offsets + p * 8), _mm256_slli_epi32(lane_sums, 3));
  }
}

void q8_gemv_int8(const int8_t* q, const float* dx, int64_t M, const QuantMatrix& W, const float* bias,
                  float* y) {
  with_row_count(M, [&](auto rows) { q8_gemv<rows()>(q, dx, W, bias, y); });
}

void q4_gemv_pairs(const int8_t* q, const float* dx, const int32_t* offsets, int64_t M, const QuantMatrix& W,
                   const float* bias, float* y) {
  with_row_count(M, [&](auto rows) { q4_gemv<rows()>(q, dx, offsets, W, bias, y); });
}

void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  if (W.type == QuantType::Q8_0) dequantize<QuantType::Q8_0>(W, r0, count, dst);
  else dequantize<QuantType::Q4_0>(W, r0, count, dst);
}

}  // namespace pg::avx2
