// Q4_0 matrix-vector product with AVX512-VNNI (quant_kernels.h), used by the avx512bf16 and amx levels:
// x is quantized per 32-value block to int8 (d_x = max|x| / 127, q = x / d_x to nearest even, as ggml's AVX
// quantize_row_q8_0), then each pair of weight blocks is one `vpdpbusd` of the unsigned nibbles with the int8
// x, corrected for the nibbles' offset of 8: y = Σ_b d_b · d_xb · (Σ_j n_bj · q_xbj - 8 · Σ_j q_xbj). docs/quantization.md
// has the measurement that chose it. CMakeLists.txt compiles this file alone with AVX-512 + VNNI flags; as
// in simd_generic.h, nothing here may call an inline function of another header.
#include <immintrin.h>

#include "kernels/quant_kernels.h"

namespace pg::avx512vnni {
namespace {

constexpr int64_t kBlock = 32, kBytes = 18;
constexpr int64_t kPrefetchBytes = 4096;  // hardware prefetchers stop at page boundaries (docs/kernels.md)

// 16 lanes: lanes 0-7 hold weight block b's partial sums (4 values each), lanes 8-15 block b + 1's.
// nibbles = [b low nibbles | b high nibbles | b+1 low | b+1 high] = the blocks' 64 values in order.
__m512i pair_nibbles(const uint8_t* block) {
  const __m256i bytes = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kBytes + 2)), 1);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(bytes, nibble);                         // [b low, b+1 low]
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);  // [b high, b+1 high]
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);  // [bL, b1L, bH, b1H]
  return _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0));            // [bL, bH, b1L, b1H]
}

// d of blocks b and b + 1 in lanes 0-7 and 8-15.
__m512 pair_scales(const uint8_t* block) {
  uint16_t a, b;
  __builtin_memcpy(&a, block, 2);
  __builtin_memcpy(&b, block + kBytes, 2);
  const __m256i halves = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(short(a))),
                                                 _mm_set1_epi16(short(b)), 1);
  return _mm512_cvtph_ps(halves);
}

}  // namespace

void quantize_activations(const float* x, int64_t blocks, int8_t* q, float* scales, int32_t* offsets) {
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 lo = _mm512_loadu_ps(x + b * kBlock), hi = _mm512_loadu_ps(x + b * kBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    // vmaxps drops a NaN operand; a NaN scale keeps it, so a NaN in x gives NaN outputs as with float x.
    const bool nan = (_mm512_cmp_ps_mask(lo, lo, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(hi, hi, _CMP_UNORD_Q)) != 0;
    const float d = nan ? __builtin_nanf("") : amax / 127.f;
    const __m512 inv = _mm512_set1_ps(d != 0.f ? 1.f / d : 0.f);
    // Nearest, ties to even (as ggml's AVX quantize_row_q8_0 rounds x).
    auto to_int = [&](__m512 v) { return _mm512_cvtps_epi32(_mm512_mul_ps(v, inv)); };
    const __m512i qlo = to_int(lo), qhi = to_int(hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kBlock), _mm512_cvtepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * kBlock + 16), _mm512_cvtepi32_epi8(qhi));
    for (int lane = 0; lane < 8; ++lane) scales[b * 8 + lane] = d;
    // 8 · (sum of the 4 values of each vpdpbusd lane): lane l of a block covers values 4l .. 4l + 3.
    const __m512i sums = _mm512_add_epi32(qlo, _mm512_shuffle_epi32(qlo, _MM_PERM_CDAB));
    const __m512i sums4 = _mm512_add_epi32(sums, _mm512_shuffle_epi32(sums, _MM_PERM_BADC));
    const __m512i sums_hi = _mm512_add_epi32(qhi, _mm512_shuffle_epi32(qhi, _MM_PERM_CDAB));
    const __m512i sums4_hi = _mm512_add_epi32(sums_hi, _mm512_shuffle_epi32(sums_hi, _MM_PERM_BADC));
    alignas(64) int32_t l[16], h[16];
    _mm512_store_si512(l, sums4);
    _mm512_store_si512(h, sums4_hi);
    for (int lane = 0; lane < 4; ++lane) {
      offsets[b * 8 + lane] = 8 * l[4 * lane];
      offsets[b * 8 + 4 + lane] = 8 * h[4 * lane];
    }
  }
}

void q4_gemv_rows(const int8_t* xq, const float* x_scales, const int32_t* x_offsets, int64_t M, int64_t ldq,
                  const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kBlock, row_bytes = blocks * kBytes;
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_weight_row(W, row_bytes, [&](int64_t n) {
    const uint8_t* row = base + n * row_bytes;
    for (int64_t m = 0; m < M; ++m) {
      const int8_t* q = xq + m * ldq;
      const float* ds = x_scales + m * blocks * 8;
      const int32_t* off = x_offsets + m * blocks * 8;
      __m512 acc = _mm512_setzero_ps();
      float tail = 0.f;
      int64_t b = 0;
      for (; b + 2 <= blocks; b += 2) {
        const uint8_t* block = row + b * kBytes;
        _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes), _MM_HINT_T0);
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair_nibbles(block),
                                                _mm512_loadu_si512(q + b * kBlock));
        const __m512i centred = _mm512_sub_epi32(dot, _mm512_loadu_si512(off + b * 8));
        const __m512 dx = _mm512_loadu_ps(ds + b * 8);
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(centred), _mm512_mul_ps(pair_scales(block), dx), acc);
      }
      if (b < blocks) {  // an odd last block, lane by lane
        const uint8_t* block = row + b * kBytes;
        uint16_t h;
        __builtin_memcpy(&h, block, 2);
        int32_t s = 0;
        for (int j = 0; j < 16; ++j) {
          s += (int32_t(block[2 + j] & 0x0f) - 8) * q[b * kBlock + j];
          s += (int32_t(block[2 + j] >> 4) - 8) * q[b * kBlock + 16 + j];
        }
        tail = _cvtsh_ss(h) * ds[b * 8] * float(s);
      }
      y[m * W.rows + n] = _mm512_reduce_add_ps(acc) + tail + (bias ? bias[n] : 0.f);
    }
  });
}

}  // namespace pg::avx512vnni
