// The avx512bf16 kernel level: bf16 weights times bf16-exact activations with vdpbf16ps. Each
// instruction adds two exact bf16 x bf16 products per lane to a float32 accumulator, so the result is
// a float32 sum of the exact products, like matmul_reference's, in another order. Everything else is
// the avx512 level's. CMakeLists.txt compiles this file alone with AVX-512 + AVX512-BF16 flags.
#include "kernels/simd_avx512.h"
#include "kernels/simd_generic.h"

namespace pg {
namespace {

constexpr int kLanes = 16;
constexpr int kRows = 8;     // weight rows per register tile
constexpr int kVectors = 3;  // x vectors per register tile: 8 x 3 accumulators of 32 registers
constexpr int kPanel = kLanes * kVectors;
constexpr int64_t kKBlock = 2048;  // even, so that pairs never straddle two blocks
constexpr int64_t kNBlock = 8 * kRows;

// tile[MR][MV * 16] = Σ over `pairs` column pairs of w[i][2p, 2p+1] · xp[p][·] (xp: 32-bit words, each a
// bf16 pair of one x row), plus, when `x_odd` is given, w[i][2 * pairs] · x_odd[·] for an odd last column.
template <int MR, int MV>
void micro_bf16(const uint16_t* w, int64_t ldw, const uint32_t* xp, int64_t pairs, const float* x_odd,
                float* tile) {
  constexpr int P = MV * kLanes;
  __m512 acc[MR][MV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < MV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    __m512bh xv[MV];
    for (int v = 0; v < MV; ++v) xv[v] = (__m512bh)_mm512_loadu_si512(xp + p * P + v * kLanes);
    for (int i = 0; i < MR; ++i) {
      uint32_t pair;
      __builtin_memcpy(&pair, w + i * ldw + 2 * p, 4);
      const __m512bh b = (__m512bh)_mm512_set1_epi32(int(pair));
      for (int v = 0; v < MV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], b, xv[v]);
    }
  }
  if (x_odd != nullptr) {
    __m512 xv[MV];
    for (int v = 0; v < MV; ++v) xv[v] = _mm512_loadu_ps(x_odd + v * kLanes);
    for (int i = 0; i < MR; ++i) {
      const uint32_t bits = uint32_t{w[i * ldw + 2 * pairs]} << 16;
      float wf;
      __builtin_memcpy(&wf, &bits, 4);
      const __m512 b = _mm512_set1_ps(wf);
      for (int v = 0; v < MV; ++v) acc[i][v] = _mm512_fmadd_ps(b, xv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < MV; ++v) _mm512_storeu_ps(tile + i * P + v * kLanes, acc[i][v]);
}

using MicroBf16 = void (*)(const uint16_t*, int64_t, const uint32_t*, int64_t, const float*, float*);

template <int MV, int MR = kRows>
MicroBf16 pick_rows(int rows) {
  if constexpr (MR == 1) {
    return &micro_bf16<1, MV>;
  } else {
    return rows == MR ? &micro_bf16<MR, MV> : pick_rows<MV, MR - 1>(rows);
  }
}

MicroBf16 micro_for(int rows, int vectors) {
  if (vectors == 3) return pick_rows<3>(rows);
  return vectors == 2 ? pick_rows<2>(rows) : pick_rows<1>(rows);
}

// Panel p of packed x: rows [m0, m0 + count), `width` = count rounded up to whole vectors (missing rows
// zero); `pairs` [K / 2][width] words; `odd` [width] floats of column K - 1 when K is odd.
struct PairPanel {
  int64_t m0, count, width;
  uint32_t* pairs;
  float* odd;
};

void gemm_bf16_rows(const GemmArgs& a) {
  const int64_t panels = ceil_div(a.M, kPanel), n_blocks = ceil_div(a.N, kNBlock);
  const int64_t total_pairs = a.K / 2;
  const bool odd_k = a.K % 2 != 0;
  uint32_t* packed = scratch<uint32_t>(kPackedX, size_t(panels * kPanel * total_pairs));
  float* odd_column = odd_k ? scratch<float>(kOddColumn, size_t(panels * kPanel)) : nullptr;
  const uint16_t* w = static_cast<const uint16_t*>(a.w);
  auto panel = [&](int64_t p) {
    const int64_t m0 = p * kPanel, count = min_i64(kPanel, a.M - m0);
    return PairPanel{m0, count, ceil_div(count, kLanes) * kLanes, packed + m0 * total_pairs,
                     odd_k ? odd_column + m0 : nullptr};
  };
#pragma omp parallel if (a.M * a.N * a.K >= kParallelMinWork)
  {
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      const PairPanel pn = panel(p);
      avx512bf16::pack_bf16_pairs(a.x, a.ldx, pn.m0, pn.count, pn.width, total_pairs, pn.pairs);
      if (odd_k)
        for (int64_t j = 0; j < pn.width; ++j) pn.odd[j] = j < pn.count ? a.x[(pn.m0 + j) * a.ldx + a.K - 1] : 0.f;
    }
    alignas(64) float tile[kRows * kPanel];
#pragma omp for schedule(dynamic, 1)
    for (int64_t nb = 0; nb < n_blocks; ++nb) {
      const int64_t n0 = nb * kNBlock, n_count = min_i64(kNBlock, a.N - n0);
      for (int64_t kb = 0; kb < a.K; kb += kKBlock) {
        const int64_t kc = min_i64(kKBlock, a.K - kb), pairs = kc / 2;
        const bool last_odd = kc % 2 != 0;
        const bool add = a.accumulate || kb > 0;
        for (int64_t p = 0; p < panels; ++p) {
          const PairPanel pn = panel(p);
          const int vectors = int(pn.width / kLanes);
          const uint32_t* xp = pn.pairs + (kb / 2) * pn.width;
          for (int64_t i = 0; i < n_count; i += kRows) {
            const int rows = int(min_i64(kRows, n_count - i));
            micro_for(rows, vectors)(w + (n0 + i) * a.ldw + kb, a.ldw, xp, pairs, last_odd ? pn.odd : nullptr, tile);
            write_tile(tile, pn.width, rows, pn.count, a.y + pn.m0 * a.ldy + n0 + i, a.ldy, false,
                       a.bias ? a.bias + n0 + i : nullptr, add);
          }
        }
      }
    }
  }
}

// Decode-sized products (M <= kRowIndependentRows) of bf16 weights and bf16-exact x rows (converted to bf16
// once): register tiles of kDotWeightRows weight rows x kDotRows x rows, one vdpbf16ps accumulator per
// output (32 columns per instruction), so the weights stream from memory once and each x row is read once
// per kDotWeightRows weight rows. The tile shape only decides which sums run side by side, never the order
// of one sum's additions, so every row comes out as it would alone.
constexpr int kDotWeightRows = 4;
constexpr int kDotRows = 4;  // 4 x 4 accumulators + 4 x vectors + 1 weight vector

template <int RW, int RX>
void dot_bf16_tile(const GemmArgs& a, const uint16_t* xb, int64_t ldxb, int64_t n0, int64_t m0) {
  const uint16_t* w = static_cast<const uint16_t*>(a.w) + n0 * a.ldw;
  // The pass that brings these weight rows in from memory prefetches the next tile's rows, each at the
  // column it is reading (the rows of a tile are read side by side, so the prefetch must run a tile ahead).
  const bool first_pass = m0 == 0;
  const int64_t next_tile = RW * a.ldw;
  __m512 acc[RW][RX];
  for (int i = 0; i < RW; ++i)
    for (int r = 0; r < RX; ++r) acc[i][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= a.K; k += 32) {
    __m512bh xv[RX];
    for (int r = 0; r < RX; ++r) xv[r] = (__m512bh)_mm512_loadu_si512(xb + (m0 + r) * ldxb + k);
    for (int i = 0; i < RW; ++i) {
      const uint16_t* row = w + i * a.ldw + k;
      if (first_pass) _mm_prefetch(reinterpret_cast<const char*>(row + next_tile), _MM_HINT_T0);
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(row);
      for (int r = 0; r < RX; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], wv, xv[r]);
    }
  }
  if (k < a.K) {  // masked: columns past K read as zero (and are never touched)
    const __mmask32 mask = (__mmask32{1} << (a.K - k)) - 1;
    __m512bh xv[RX];
    for (int r = 0; r < RX; ++r) xv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, xb + (m0 + r) * ldxb + k);
    for (int i = 0; i < RW; ++i) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, w + i * a.ldw + k);
      for (int r = 0; r < RX; ++r) acc[i][r] = _mm512_dpbf16_ps(acc[i][r], wv, xv[r]);
    }
  }
  for (int i = 0; i < RW; ++i)
    for (int r = 0; r < RX; ++r) {
      const float s = V512::sum(acc[i][r]);
      float* out = a.y + (m0 + r) * a.ldy + n0 + i;
      *out = a.accumulate ? *out + s : s + (a.bias ? a.bias[n0 + i] : 0.f);
    }
}

using DotTile = void (*)(const GemmArgs&, const uint16_t*, int64_t, int64_t, int64_t);

template <int RW, int RX = kDotRows>
DotTile dot_tile_columns(int rows) {
  if constexpr (RX == 1) {
    return &dot_bf16_tile<RW, 1>;
  } else {
    return rows == RX ? &dot_bf16_tile<RW, RX> : dot_tile_columns<RW, RX - 1>(rows);
  }
}

template <int RW = kDotWeightRows>
DotTile dot_tile_for(int weight_rows, int rows) {
  if constexpr (RW == 1) {
    return dot_tile_columns<1>(rows);
  } else {
    return weight_rows == RW ? dot_tile_columns<RW>(rows) : dot_tile_for<RW - 1>(weight_rows, rows);
  }
}

// Requires M <= kRowIndependentRows, bf16 weights and all_bf16_exact(x).
void gemv_bf16(const GemmArgs& a) {
  // Rows one cache line longer than K: rows a multiple of 4 KB apart would share L1 sets with each other
  // and with the weight rows (K = 2048 bf16 is 4 KB).
  const int64_t ldxb = a.K + 32;
  uint16_t* xb = scratch<uint16_t>(kPackedX, size_t(a.M * ldxb));
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t k = 0; k < a.K; k += 16) {  // the high halves: exact, x holds bf16 values
      const int count = int(min_i64(16, a.K - k));
      const __m512i bits = _mm512_castps_si512(load_n<V512>(a.x + m * a.ldx + k, count));
      _mm256_mask_storeu_epi16(xb + m * ldxb + k, __mmask16((1u << count) - 1),
                               _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
    }
  // Chunks of about 256 KB of weights (whole tiles), handed out dynamically (as gemv_typed).
  const int64_t chunk_rows =
      max_i64(1, (int64_t{1} << 18) / max_i64(1, a.K * 2) / kDotWeightRows) * kDotWeightRows;
  const int64_t chunks = ceil_div(a.N, chunk_rows);
  const int64_t full_m = a.M / kDotRows * kDotRows, rest_m = a.M - full_m;
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1 && a.N * a.K >= kParallelMinWork)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = min_i64(a.N, (c + 1) * chunk_rows);
    for (int64_t n0 = c * chunk_rows; n0 < end; n0 += kDotWeightRows) {
      const int weight_rows = int(min_i64(kDotWeightRows, end - n0));
      const DotTile full = dot_tile_for(weight_rows, kDotRows);
      for (int64_t m0 = 0; m0 < full_m; m0 += kDotRows) full(a, xb, ldxb, n0, m0);
      if (rest_m > 0) dot_tile_for(weight_rows, int(rest_m))(a, xb, ldxb, n0, full_m);
    }
  }
}

// Each x row by the kernel its own values choose (vdpbf16ps when bf16-exact, else float32 FMA), so that a
// row's result never depends on the other rows of the call.
void gemv_rows(const GemmArgs& a) {
  int64_t exact_rows = 0;
  for (int64_t m = 0; m < a.M; ++m) exact_rows += all_bf16_exact(a.x + m * a.ldx, 1, a.K, a.ldx);
  if (exact_rows == a.M) return gemv_bf16(a);
  if (exact_rows == 0) return avx512::gemm(a);
  for (int64_t m = 0; m < a.M; ++m) {
    GemmArgs row = a;
    row.x = a.x + m * a.ldx;
    row.y = a.y + m * a.ldy;
    row.M = 1;
    gemv_rows(row);
  }
}

}  // namespace

namespace avx512bf16 {

void pack_bf16_pairs(const float* x, int64_t ldx, int64_t m0, int64_t count, int64_t width, int64_t pairs,
                     uint32_t* dst) {
  for (int64_t j = 0; j < width; j += kLanes) {
    const int64_t rows = max_i64(0, min_i64(kLanes, count - j));
    for (int64_t q = 0; q < pairs; q += kLanes) {
      const int words = int(min_i64(kLanes, pairs - q));
      __m512 r[kLanes];
      for (int i = 0; i < kLanes; ++i) {
        if (i >= rows) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        // Rounding to nearest is exact here: the caller checked that x holds bfloat16 values.
        const float* src = x + (m0 + j + i) * ldx + 2 * q;
        const int floats = 2 * words;
        const __m512 lo = load_n<V512>(src, floats < kLanes ? floats : kLanes);
        const __m512 hi = floats > kLanes ? load_n<V512>(src + kLanes, floats - kLanes) : _mm512_setzero_ps();
        r[i] = (__m512)_mm512_cvtne2ps_pbh(hi, lo);
      }
      V512::transpose(r);
      for (int c = 0; c < words; ++c) _mm512_storeu_ps(reinterpret_cast<float*>(dst + (q + c) * width + j), r[c]);
    }
  }
}

void gemm_bf16(const GemmArgs& a) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.K <= 0) return gemm_empty_k(a);
  for_row_blocks(a, gemm_bf16_rows);
}

void gemm(const GemmArgs& a) {
  if (a.w_dtype == DType::BF16 && !a.x_transposed && !a.y_transposed && a.M > 0 && a.N > 0 && a.K > 0) {
    if (a.M <= kRowIndependentRows) return gemv_rows(a);
    if (all_bf16_exact(a.x, a.M, a.K, a.ldx)) return gemm_bf16(a);
  }
  avx512::gemm(a);
}

}  // namespace avx512bf16
}  // namespace pg
