// The amx kernel level: bf16 weights times bf16-exact activations on AMX-BF16 tiles. TDPBF16PS adds
// exact bf16 x bf16 products to float32 accumulators, so the result is a float32 sum of the exact
// products, like matmul_reference's, in another order. Weight rows are the tiles' A operand, loaded in
// place from the row-major weights (16 rows x 32 columns per tile); x is packed into the B operand's
// pair layout; a C tile holds [16 weight rows][16 x rows] and is written to y transposed. Column and row
// remainders that do not fill a tile go to the avx512bf16 kernel. Everything else is the avx512bf16
// level's. CMakeLists.txt compiles this file alone with AVX-512 + AVX512-BF16 + AMX flags.
#include <immintrin.h>

#include "kernels/simd_generic.h"

namespace pg {
namespace {

constexpr int64_t kTile = 16;       // rows of every tile; C and B tiles hold 16 columns
constexpr int64_t kTileK = 32;      // bf16 columns of an A tile (64 bytes)

// LDTILECFG's 64-byte operand, palette 1: tiles 0-3 C (float32), 4-5 A (weights), 6-7 B (x pairs),
// each 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

// y[:, 0:n_full] = x[:, 0:k_full] · W[0:n_full, 0:k_full]ᵀ (+ bias) on tiles; n_full and k_full are
// multiples of 32.
void gemm_tiles(const GemmArgs& a, int64_t n_full, int64_t k_full) {
  const int64_t pairs = k_full / 2, m_blocks = ceil_div(a.M, 2 * kTile), n_blocks = n_full / (2 * kTile);
  // x rows in groups of 16, each [pairs][16] words: a B tile for columns [k, k + 32) is 16 rows of 64
  // bytes starting at pair k / 2.
  uint32_t* packed = scratch<uint32_t>(kPackedX, size_t(m_blocks * 2 * kTile * pairs));
  const uint16_t* w = static_cast<const uint16_t*>(a.w);
  const int64_t w_stride = a.ldw * int64_t(sizeof(uint16_t));
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t g = 0; g < 2 * m_blocks; ++g)
      avx512bf16::pack_bf16_pairs(a.x, a.ldx, g * kTile, a.M - g * kTile, kTile, pairs,
                                  packed + g * kTile * pairs);
    const TileConfig config;
    _tile_loadconfig(&config);
    alignas(64) float c[4][kTile * kTile];
#pragma omp for schedule(dynamic, 1)
    for (int64_t nb = 0; nb < n_blocks; ++nb) {
      const int64_t n0 = nb * 2 * kTile;
      const uint16_t* w0 = w + n0 * a.ldw;
      const uint16_t* w1 = w0 + kTile * a.ldw;
      for (int64_t mb = 0; mb < m_blocks; ++mb) {
        const uint32_t* x0 = packed + (2 * mb) * kTile * pairs;
        const uint32_t* x1 = x0 + kTile * pairs;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t k = 0; k < k_full; k += kTileK) {
          _tile_loadd(4, w0 + k, w_stride);
          _tile_loadd(5, w1 + k, w_stride);
          _tile_loadd(6, x0 + (k / 2) * kTile, 64);
          _tile_loadd(7, x1 + (k / 2) * kTile, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, c[0], 64);
        _tile_stored(1, c[1], 64);
        _tile_stored(2, c[2], 64);
        _tile_stored(3, c[3], 64);
        for (int t = 0; t < 4; ++t) {
          const int64_t n = n0 + (t / 2) * kTile, m = (2 * mb + t % 2) * kTile;
          const int64_t count_m = min_i64(kTile, a.M - m);
          if (count_m > 0)
            write_tile(c[t], kTile, kTile, count_m, a.y + m * a.ldy + n, a.ldy, false, a.bias ? a.bias + n : nullptr,
                       a.accumulate);
        }
      }
    }
    _tile_release();
  }
}

}  // namespace

namespace amx {

void gemm(const GemmArgs& a) {
  const int64_t n_full = a.N / (2 * kTile) * (2 * kTile), k_full = a.K / kTileK * kTileK;
  // Decode-sized products go to the avx512bf16 level's row-independent one (kRowIndependentRows).
  if (a.w_dtype != DType::BF16 || a.M <= kRowIndependentRows || n_full == 0 || k_full == 0 ||
      !all_bf16_exact(a.x, a.M, a.K, a.ldx))
    return avx512bf16::gemm(a);
  for_row_blocks(a, [&](const GemmArgs& block) { gemm_tiles(block, n_full, k_full); });
  if (k_full < a.K) {  // the remaining columns, added to the tiles' sums
    GemmArgs rest = a;
    rest.x = a.x + k_full;
    rest.w = static_cast<const uint16_t*>(a.w) + k_full;
    rest.N = n_full;
    rest.K = a.K - k_full;
    rest.accumulate = true;
    avx512bf16::gemm_bf16(rest);
  }
  if (n_full < a.N) {  // the remaining weight rows
    GemmArgs rest = a;
    rest.w = static_cast<const uint16_t*>(a.w) + n_full * a.ldw;
    rest.N = a.N - n_full;
    rest.y = a.y + n_full;
    rest.bias = a.bias ? a.bias + n_full : nullptr;
    avx512bf16::gemm_bf16(rest);
  }
}

}  // namespace amx
}  // namespace pg
