// Entry points of the per-instruction-set quantized kernels (quant_avx2.cpp, quant_avx512.cpp, each
// compiled with its level's target flags, see CMakeLists.txt); quant.cpp dispatches to them by
// active_isa(). The avx512bf16 and amx levels use the avx512 ones.
#pragma once
#include <cstdint>

#include "kernels/quant.h"

namespace pg {

// Calls row(n) for every row n of W (row_bytes apart), in chunks of about 256 KB of consecutive rows handed out
// dynamically to the OpenMP threads (a core busy elsewhere takes fewer); small matrices on one thread. The row
// loop of every level's quantized matrix-vector product. Each level's file instantiates it with a lambda of its
// own, so every instantiation is a local symbol of that file (no weak symbol that another level could take).
template <class RowFn>
inline void for_each_weight_row(const QuantMatrix& W, int64_t row_bytes, RowFn&& row) {
  const int64_t chunk_rows = row_bytes >= (int64_t{1} << 18) ? 1 : (int64_t{1} << 18) / row_bytes;
  const int64_t chunks = (W.rows + chunk_rows - 1) / chunk_rows;
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1 && W.rows * W.cols >= (int64_t{1} << 16))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = W.rows < (c + 1) * chunk_rows ? W.rows : (c + 1) * chunk_rows;
    for (int64_t n = c * chunk_rows; n < end; ++n) row(n);
  }
}

namespace avx2 {
// x [blocks * 32] -> q [blocks * 32] int8 and d [blocks]: d_b = max|x_b| / 127 (NaN when the block holds a
// NaN), q = x / d_b to nearest even.
void quantize_activations(const float* x, int64_t blocks, int8_t* q, float* d);
// Q8_0 W: y[m, n] = Σ_b d_nb · d_mb · Σ_j w_nbj · q_m,32b+j (+ bias[n]) for m < M <= 4: M rows of quantized x
// (rows W.cols values apart, their d W.cols / 32 apart), y rows W.rows apart. Multithreaded over chunks of
// weight rows.
void q8_gemv_int8(const int8_t* q, const float* d, int64_t M, const QuantMatrix& W, const float* bias, float* y);
// x [blocks * 32] in pairs of blocks (A, B) = (2p, 2p + 1), the layout q4_gemv_pairs reads; an odd last block
// pairs with zeros. Per pair p: q[64 p ..] = A's int8 values 0-15, B's 0-15, A's 16-31, B's 16-31 (as
// quantize_activations rounds them); dx[8 p ..] = d_A × 4, d_B × 4; offsets[8 p ..] = 8 × (lane k: the sum of
// the values that int32 lane k of a pair's products holds). Arrays of (blocks + 1) / 2 pairs.
void quantize_activations_q4_pairs(const float* x, int64_t blocks, int8_t* q, float* dx, int32_t* offsets);
// Q4_0 W: as q8_gemv_int8, for M <= 4 rows of x in quantize_activations_q4_pairs' layout, row m's arrays
// (W.cols / 32 + 1) / 2 pairs apart.
void q4_gemv_pairs(const int8_t* q, const float* dx, const int32_t* offsets, int64_t M, const QuantMatrix& W,
                   const float* bias, float* y);
// Rows [r0, r0 + count) of W as float32, row-major [count, W.cols].
void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst);
}  // namespace avx2

namespace avx512 {
void quant_gemv(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y);
void dequantize_rows_f32(const QuantMatrix& W, int64_t r0, int64_t count, float* dst);
// As dequantize_rows_f32, each value rounded to the nearest-even bfloat16.
void dequantize_rows_bf16(const QuantMatrix& W, int64_t r0, int64_t count, uint16_t* dst);
}  // namespace avx512

// Q4_0 with int8 activations and `vpdpbusd` (AVX512-VNNI), for the avx512bf16 and amx levels on CPUs
// with VNNI (all of them so far).
namespace avx512vnni {
// x [blocks * 32] -> q [blocks * 32] int8, scales [blocks * 8] (each block's d_x 8 times, one per
// vpdpbusd lane; NaN when the block holds a NaN), offsets [blocks * 8]: 8 times the sum of each group of 4
// consecutive q.
void quantize_activations(const float* x, int64_t blocks, int8_t* q, float* scales, int32_t* offsets);
// y[m, n] = Σ_b d_nb · d_x,mb · Σ_j (nibble_nbj - 8) · q_mbj (+ bias[n]) for M rows of quantized x (q rows
// ldq apart; scales and offsets of row m at m * blocks * 8). Multithreaded over rows of W.
void q4_gemv_rows(const int8_t* q, const float* scales, const int32_t* offsets, int64_t M, int64_t ldq,
                  const QuantMatrix& W, const float* bias, float* y);
}  // namespace avx512vnni

}  // namespace pg
