// Kernels written once over a float32 vector type V (V512 in kernels_avx512.cpp, V256 in
// kernels_avx2.cpp) and instantiated in those per-instruction-set translation units.
//
// Everything here has internal linkage (anonymous namespace, V itself is internal) and calls no inline
// function of another header and no standard-library template: an inline or template symbol emitted
// by a unit compiled with -mavx512f is a weak symbol the linker may pick for the whole program, which
// would then execute AVX-512 code on a CPU without it. Math functions are taken as GCC builtins for the
// same reason (std::sqrt(float) is an inline wrapper).
#pragma once
#include <omp.h>

#include <cstdint>
#include <cstdlib>

#include "kernels/isa_kernels.h"

namespace pg {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// x rows per pass of a matrix-vector product over a weight row (register budget: 4 x 4 accumulators).
constexpr int kGemvGroupRows = 4;
// Below this many multiply-adds a product runs on the calling thread (thread start-up would dominate).
constexpr int64_t kParallelMinWork = int64_t{1} << 16;

// Per-thread scratch memory, one buffer per purpose, kept between calls (64-byte aligned, grow-only):
// a fresh allocation of this size is mmapped by malloc and page-faulted again on every call, which costs
// as much as a small GEMM.
enum ScratchSlot { kPackedX, kOddColumn, kWidenedWeights, kScores, kScratchSlots };

template <class T>
T* scratch(ScratchSlot slot, size_t count) {
  struct Cache {
    void* data[kScratchSlots] = {};
    size_t bytes[kScratchSlots] = {};
    ~Cache() {
      for (void* d : data) std::free(d);
    }
  };
  thread_local Cache cache;
  const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
  if (cache.bytes[slot] < bytes) {
    std::free(cache.data[slot]);
    cache.data[slot] = std::aligned_alloc(64, bytes);
    cache.bytes[slot] = cache.data[slot] ? bytes : 0;
    if (cache.data[slot] == nullptr) throw_out_of_memory();
  }
  return static_cast<T*>(cache.data[slot]);
}

inline size_t element_size(DType t) { return t == DType::F32 ? 4 : 2; }

template <class V>
typename V::F round_act(typename V::F x, DType t) {
  if (t == DType::BF16) return V::round_bf16(x);
  if (t == DType::F16) return V::round_f16(x);
  return x;
}

// e^x for x <= 88 (the callers' range), within 2 ulp; 0 below ln(FLT_MIN) where the exact result is
// subnormal (absolute error < 1.2e-38); -inf gives 0, NaN stays NaN. Cephes expf: x = n ln2 + r,
// |r| <= ln2 / 2, e^r by a degree-7 polynomial.
template <class V>
typename V::F vexp(typename V::F x) {
  using F = typename V::F;
  const F lowest = V::set1(-87.33654475f);
  const F xc = V::min(V::set1(88.0f), V::max(lowest, x));
  const F n = V::round_int(V::mul(xc, V::set1(1.44269504088896341f)));
  F r = V::fmadd(n, V::set1(-0.693359375f), xc);
  r = V::fmadd(n, V::set1(2.12194440e-4f), r);
  F p = V::set1(1.9875691500e-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507e-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073e-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894e-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459e-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201e-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.f)));
  return V::select(V::less(x, lowest), V::zero(), V::mul(p, V::pow2(n)));
}

// tanh within 2 ulp (Cephes tanhf): an odd polynomial for |x| < 0.625, else 1 - 2 / (e^(2|x|) + 1).
template <class V>
typename V::F vtanh(typename V::F x) {
  using F = typename V::F;
  const F ax = V::abs(x);
  const F z = V::mul(x, x);
  F p = V::set1(-5.70498872745e-3f);
  p = V::fmadd(p, z, V::set1(2.06390887954e-2f));
  p = V::fmadd(p, z, V::set1(-5.37397155531e-2f));
  p = V::fmadd(p, z, V::set1(1.33314422036e-1f));
  p = V::fmadd(p, z, V::set1(-3.33332819422e-1f));
  const F small = V::fmadd(V::mul(p, z), x, x);
  // tanh(20) is 1 in float32; the clamp keeps e^(2|x|) finite.
  const F e = vexp<V>(V::mul(V::min(V::set1(20.f), ax), V::set1(2.f)));
  const F large = V::sub(V::set1(1.f), V::div(V::set1(2.f), V::add(e, V::set1(1.f))));
  return V::select(V::less(ax, V::set1(0.625f)), small, V::copy_sign(large, x));
}

// dst[i, i + W) = f(i, lanes) for each vector of n floats (the last one partial, `lanes` < W).
template <class V, class Fn>
void store_each(float* dst, int64_t n, Fn f) {
  constexpr int W = V::kWidth;
  int64_t i = 0;
  for (; i + W <= n; i += W) V::store(dst + i, f(i, W));
  if (i < n) V::store(dst + i, f(i, int(n - i)), int(n - i));
}

// A vector of n <= W floats from p, the missing lanes zero.
template <class V>
typename V::F load_n(const float* p, int n) {
  return n == V::kWidth ? V::load(p) : V::load(p, n);
}

// x[i] = f(x[i]) vector by vector.
template <class V, class Fn>
void map_inplace(float* x, int64_t n, Fn f) {
  store_each<V>(x, n, [&](int64_t i, int lanes) { return f(load_n<V>(x + i, lanes)); });
}

template <class V>
void round_span(float* x, int64_t n, DType t) {
  if (t == DType::BF16) map_inplace<V>(x, n, [](typename V::F v) { return V::round_bf16(v); });
  else if (t == DType::F16) map_inplace<V>(x, n, [](typename V::F v) { return V::round_f16(v); });
}

// Splits n elements into chunks of whole vectors for the threads.
template <class V, class Fn>
void parallel_chunks(int64_t n, Fn f) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = ceil_div(n, kChunk);
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t c = 0; c < chunks; ++c) f(c * kChunk, min_i64(kChunk, n - c * kChunk));
}

template <class V>
void round_inplace_impl(float* x, size_t n, DType t) {
  if (t == DType::F32) return;
  parallel_chunks<V>(int64_t(n), [&](int64_t begin, int64_t count) { round_span<V>(x + begin, count, t); });
}

// 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))) in ops.cpp's operation order.
template <class V>
typename V::F gelu(typename V::F v) {
  const typename V::F cube_term = V::mul(V::mul(V::mul(V::set1(0.044715f), v), v), v);
  const typename V::F t = vtanh<V>(V::mul(V::set1(0.7978845608028654f), V::add(v, cube_term)));
  return V::mul(V::mul(V::set1(0.5f), v), V::add(V::set1(1.f), t));
}

template <class V>
void gelu_tanh_impl(float* x, int64_t n) {
  parallel_chunks<V>(n, [&](int64_t begin, int64_t count) {
    map_inplace<V>(x + begin, count, [](typename V::F v) { return gelu<V>(v); });
  });
}

template <class V>
void gelu_tanh_mul_impl(float* a, const float* b, int64_t n, DType act) {
  parallel_chunks<V>(n, [&](int64_t begin, int64_t count) {
    float* aa = a + begin;
    const float* bb = b + begin;
    store_each<V>(aa, count, [&](int64_t i, int lanes) {
      const typename V::F g = round_act<V>(gelu<V>(load_n<V>(aa + i, lanes)), act);
      return round_act<V>(V::mul(g, load_n<V>(bb + i, lanes)), act);
    });
  });
}

// Sum of f(i) over vectors of n lanes; the last partial vector's missing lanes must come out 0.
template <class V, class Fn>
float vector_sum(int64_t n, Fn f) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  F s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    s0 = V::add(s0, f(i, W));
    s1 = V::add(s1, f(i + W, W));
  }
  for (; i < n; i += W) s0 = V::add(s0, f(i, int(min_i64(W, n - i))));
  return V::sum(V::add(s0, s1));
}

template <class V>
void rms_norm_impl(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
                   float* y) {
  using F = typename V::F;
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float ss = vector_sum<V>(dim, [&](int64_t i, int lanes) {
      const F v = load_n<V>(xr + i, lanes);
      return V::mul(v, v);
    });
    const F inv = V::set1(1.0f / __builtin_sqrtf(ss / float(dim) + eps));
    const F offset = V::set1(scale_offset);
    store_each<V>(y + r * dim, dim, [&](int64_t i, int lanes) {
      return V::mul(V::mul(load_n<V>(xr + i, lanes), inv), V::add(offset, load_n<V>(w + i, lanes)));
    });
  }
}

// Two-pass mean and biased variance in float32 vectors (ops.cpp's reference accumulates in double).
template <class V>
void layer_norm_impl(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                     float* y) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float mean = vector_sum<V>(dim, [&](int64_t i, int lanes) { return load_n<V>(xr + i, lanes); }) / float(dim);
    alignas(64) float mean_lanes[W];
    for (int l = 0; l < W; ++l) mean_lanes[l] = mean;
    const F m = V::load(mean_lanes);
    // A partial vector's missing lanes must give 0: subtract a partial vector of means.
    const float var = vector_sum<V>(dim, [&](int64_t i, int lanes) {
                        const F d = V::sub(load_n<V>(xr + i, lanes), load_n<V>(mean_lanes, lanes));
                        return V::mul(d, d);
                      }) /
                      float(dim);
    const F inv = V::set1(1.0f / __builtin_sqrtf(var + eps));
    store_each<V>(y + r * dim, dim, [&](int64_t i, int lanes) {
      const F centred = V::sub(load_n<V>(xr + i, lanes), m);
      return V::add(V::mul(V::mul(centred, inv), load_n<V>(w + i, lanes)), load_n<V>(b + i, lanes));
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Matrix-vector products (M <= kRowIndependentRows): W streams through once, widened to float32 in registers;
// each weight row is dotted with the x rows kGemvGroupRows at a time while it is in L1.

template <class V, DType D>
typename V::F load_weights(const void* row, int64_t k, int n) {
  if constexpr (D == DType::F32) {
    return load_n<V>(static_cast<const float*>(row) + k, n);
  } else if constexpr (D == DType::BF16) {
    const uint16_t* p = static_cast<const uint16_t*>(row) + k;
    return n == V::kWidth ? V::load_bf16(p) : V::load_bf16(p, n);
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(row) + k;
    return n == V::kWidth ? V::load_f16(p) : V::load_f16(p, n);
  }
}

// y[m0 .. m0 + MM)[n] for weight row n. Four independent accumulators per x row, the same for any MM, so a
// row's sum does not depend on the rows beside it; the weights are prefetched
// kPrefetchBytes ahead because hardware prefetchers stop at page boundaries (a bf16 row of 2048 is one
// page) and a core needs several kilobytes in flight to draw its share of the memory bandwidth.
template <class V, DType D, int MM>
void gemv_row(const GemmArgs& a, int64_t n, int64_t m0) {
  using F = typename V::F;
  constexpr int W = V::kWidth, U = 4;
  constexpr int64_t kPrefetchBytes = 4096;
  constexpr int64_t kStepBytes = U * W * int64_t(D == DType::F32 ? 4 : 2);
  const uint8_t* row = static_cast<const uint8_t*>(a.w) + size_t(n) * size_t(a.ldw) * element_size(D);
  F acc[MM][U];
  for (int m = 0; m < MM; ++m)
    for (int u = 0; u < U; ++u) acc[m][u] = V::zero();
  int64_t k = 0;
  for (; k + U * W <= a.K; k += U * W) {
    const uint8_t* ahead = row + k * int64_t(element_size(D)) + kPrefetchBytes;
    for (int64_t b = 0; b < kStepBytes; b += 64) V::prefetch(ahead + b);
    for (int u = 0; u < U; ++u) {
      const F wv = load_weights<V, D>(row, k + u * W, W);
      for (int m = 0; m < MM; ++m) acc[m][u] = V::fmadd(wv, V::load(a.x + (m0 + m) * a.ldx + k + u * W), acc[m][u]);
    }
  }
  for (; k < a.K; k += W) {
    const int cnt = int(min_i64(W, a.K - k));
    const F wv = load_weights<V, D>(row, k, cnt);
    for (int m = 0; m < MM; ++m) acc[m][0] = V::fmadd(wv, load_n<V>(a.x + (m0 + m) * a.ldx + k, cnt), acc[m][0]);
  }
  for (int m = 0; m < MM; ++m) {
    const float s = V::sum(V::add(V::add(acc[m][0], acc[m][1]), V::add(acc[m][2], acc[m][3])));
    float* out = a.y + (m0 + m) * a.ldy + n;
    *out = a.accumulate ? *out + s : s + (a.bias ? a.bias[n] : 0.f);
  }
}

template <class V, DType D>
void gemv_typed(const GemmArgs& a, bool parallel) {
  // Chunks of consecutive rows, about 256 KB of weights each, handed out dynamically (a core that is
  // busy elsewhere takes fewer).
  const int64_t chunk_rows = max_i64(1, (int64_t{1} << 18) / max_i64(1, a.K * int64_t(element_size(D))));
  const int64_t chunks = ceil_div(a.N, chunk_rows);
  const int64_t full_groups = a.M / kGemvGroupRows * kGemvGroupRows;
#pragma omp parallel for schedule(dynamic, 1) if (parallel && chunks > 1 && a.N * a.K >= kParallelMinWork)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = min_i64(a.N, (c + 1) * chunk_rows);
    for (int64_t n = c * chunk_rows; n < end; ++n) {
      for (int64_t m0 = 0; m0 < full_groups; m0 += kGemvGroupRows) gemv_row<V, D, kGemvGroupRows>(a, n, m0);
      switch (a.M - full_groups) {
        case 1: gemv_row<V, D, 1>(a, n, full_groups); break;
        case 2: gemv_row<V, D, 2>(a, n, full_groups); break;
        case 3: gemv_row<V, D, 3>(a, n, full_groups); break;
        default: break;
      }
    }
  }
}

template <class V>
void gemv(const GemmArgs& a, bool parallel) {
  switch (a.w_dtype) {
    case DType::F32: return gemv_typed<V, DType::F32>(a, parallel);
    case DType::BF16: return gemv_typed<V, DType::BF16>(a, parallel);
    case DType::F16: return gemv_typed<V, DType::F16>(a, parallel);
  }
}

// ---------------------------------------------------------------------------------------------------
// Blocked float32 GEMM. x is packed into panels of up to P = kGemmVectors * kWidth rows stored k-major
// ([k][P]: a vector load gives consecutive x rows at one k); weights are read in place (f32) or widened
// block by block (bf16/f16) and broadcast one element at a time. The register tile is kGemmRows weight
// rows x P x rows, written to y transposed. Blocks: kKBlock columns of K, kNBlock weight rows per task.

// Writes a register tile to y: tile[i * tile_ld + m] is the sum for weight row i, x row m; y points at
// the tile's first element, y[m][i] (or y[i][m] when transposed).
inline void write_tile(const float* tile, int64_t tile_ld, int64_t rows, int64_t count_m, float* y, int64_t ldy,
                       bool y_transposed, const float* bias, bool add) {
  if (y_transposed) {
    for (int64_t i = 0; i < rows; ++i) {
      float* yr = y + i * ldy;
      const float* t = tile + i * tile_ld;
      const float b = bias && !add ? bias[i] : 0.f;
      if (add) {
        for (int64_t m = 0; m < count_m; ++m) yr[m] += t[m];
      } else {
        for (int64_t m = 0; m < count_m; ++m) yr[m] = t[m] + b;
      }
    }
    return;
  }
  for (int64_t m = 0; m < count_m; ++m) {
    float* yr = y + m * ldy;
    for (int64_t i = 0; i < rows; ++i) {
      const float v = tile[i * tile_ld + m];
      yr[i] = add ? yr[i] + v : v + (bias ? bias[i] : 0.f);
    }
  }
}

// tile[MR][MV * W] = Σ_k w[i][k] · xp[k][·] for kc values of k.
template <class V, int MR, int MV>
void micro_f32(const float* w, int64_t ldw, const float* xp, int64_t kc, float* tile) {
  using F = typename V::F;
  constexpr int W = V::kWidth, P = MV * W;
  F acc[MR][MV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < MV; ++v) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    F xv[MV];
    for (int v = 0; v < MV; ++v) xv[v] = V::load(xp + k * P + v * W);
    for (int i = 0; i < MR; ++i) {
      const F b = V::set1(w[i * ldw + k]);
      for (int v = 0; v < MV; ++v) acc[i][v] = V::fmadd(b, xv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < MV; ++v) V::store(tile + i * P + v * W, acc[i][v]);
}

using MicroF32 = void (*)(const float*, int64_t, const float*, int64_t, float*);

template <class V, int MV, int MR = V::kGemmRows>
MicroF32 pick_micro_f32(int rows) {
  if constexpr (MR == 1) {
    return &micro_f32<V, 1, MV>;
  } else {
    return rows == MR ? &micro_f32<V, MR, MV> : pick_micro_f32<V, MV, MR - 1>(rows);
  }
}

template <class V, int MV = V::kGemmVectors>
MicroF32 micro_f32_for(int rows, int vectors) {
  if constexpr (MV == 1) {
    return pick_micro_f32<V, 1>(rows);
  } else {
    return vectors == MV ? pick_micro_f32<V, MV>(rows) : micro_f32_for<V, MV - 1>(rows, vectors);
  }
}

// Widens `count` stored elements to float32.
template <class V>
void widen(const void* src, DType t, float* dst, int64_t count) {
  constexpr int W = V::kWidth;
  for (int64_t k = 0; k < count; k += W) {
    const int n = int(min_i64(W, count - k));
    typename V::F v;
    if (t == DType::F32) v = load_weights<V, DType::F32>(src, k, n);
    else if (t == DType::BF16) v = load_weights<V, DType::BF16>(src, k, n);
    else v = load_weights<V, DType::F16>(src, k, n);
    if (n == W) V::store(dst + k, v);
    else V::store(dst + k, v, n);
  }
}

// Panel p of packed x: rows [p * P, p * P + count), `width` = count rounded up to whole vectors, the
// missing rows zero; layout [k][width] for all K.
struct Panel {
  int64_t m0, count, width;
  float* data;
};

// Packs x rows [m0, m0 + count) into `dst` [K][width], transposing W x W blocks in registers.
template <class V>
void pack_panel(const float* x, int64_t ldx, bool x_transposed, int64_t m0, int64_t count, int64_t width, int64_t K,
                float* dst) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  if (x_transposed) {  // x[k * ldx + m]: each k is already a run of consecutive rows
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < width; j += W) {
        const int64_t valid = min_i64(W, count - j);
        V::store(dst + k * width + j, valid > 0 ? load_n<V>(x + k * ldx + m0 + j, int(valid)) : V::zero());
      }
    return;
  }
  for (int64_t j = 0; j < width; j += W) {
    const int64_t rows = max_i64(0, min_i64(W, count - j));
    for (int64_t k = 0; k < K; k += W) {
      const int cols = int(min_i64(W, K - k));
      F r[W];
      for (int i = 0; i < W; ++i) r[i] = i < rows ? load_n<V>(x + (m0 + j + i) * ldx + k, cols) : V::zero();
      V::transpose(r);
      for (int c = 0; c < cols; ++c) V::store(dst + (k + c) * width + j, r[c]);
    }
  }
}

template <class V>
void gemm_f32(const GemmArgs& a, bool parallel) {
  constexpr int W = V::kWidth, MR = V::kGemmRows, P = V::kGemmVectors * W;
  constexpr int64_t kKBlock = 1024, kNBlock = 8 * MR;
  const int64_t panels = ceil_div(a.M, P), n_blocks = ceil_div(a.N, kNBlock);
  float* packed = scratch<float>(kPackedX, size_t(panels * P * a.K));
  const bool widen_weights = a.w_dtype != DType::F32;
  const size_t w_elem = element_size(a.w_dtype);
  auto panel = [&](int64_t p) {
    const int64_t m0 = p * P, count = min_i64(P, a.M - m0);
    return Panel{m0, count, ceil_div(count, W) * W, packed + m0 * a.K};
  };
#pragma omp parallel if (parallel && a.M * a.N * a.K >= kParallelMinWork)
  {
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      const Panel pn = panel(p);
      pack_panel<V>(a.x, a.ldx, a.x_transposed, pn.m0, pn.count, pn.width, a.K, pn.data);
    }
    float* widened = widen_weights ? scratch<float>(kWidenedWeights, size_t(kNBlock * kKBlock)) : nullptr;
    alignas(64) float tile[MR * P];
#pragma omp for schedule(dynamic, 1)
    for (int64_t nb = 0; nb < n_blocks; ++nb) {
      const int64_t n0 = nb * kNBlock, n_count = min_i64(kNBlock, a.N - n0);
      for (int64_t kb = 0; kb < a.K; kb += kKBlock) {
        const int64_t kc = min_i64(kKBlock, a.K - kb);
        const float* wblock;
        int64_t wld;
        if (widen_weights) {
          for (int64_t i = 0; i < n_count; ++i)
            widen<V>(static_cast<const uint8_t*>(a.w) + (size_t(n0 + i) * size_t(a.ldw) + size_t(kb)) * w_elem,
                     a.w_dtype, widened + i * kc, kc);
          wblock = widened;
          wld = kc;
        } else {
          wblock = static_cast<const float*>(a.w) + n0 * a.ldw + kb;
          wld = a.ldw;
        }
        const bool add = a.accumulate || kb > 0;
        for (int64_t p = 0; p < panels; ++p) {
          const Panel pn = panel(p);
          const MicroF32 full = micro_f32_for<V>(MR, int(pn.width / W));
          for (int64_t i = 0; i < n_count; i += MR) {
            const int rows = int(min_i64(MR, n_count - i));
            (rows == MR ? full : micro_f32_for<V>(rows, int(pn.width / W)))(wblock + i * wld, wld,
                                                                            pn.data + kb * pn.width, kc, tile);
            float* y = a.y_transposed ? a.y + (n0 + i) * a.ldy + pn.m0 : a.y + pn.m0 * a.ldy + n0 + i;
            write_tile(tile, pn.width, rows, pn.count, y, a.ldy, a.y_transposed, a.bias ? a.bias + n0 + i : nullptr, add);
          }
        }
      }
    }
  }
}

// The blocked GEMMs pack at most this many x rows at a time, which bounds the packed copy (and keeps it
// in cache) for long sequences; the weights are read once per block.
constexpr int64_t kRowBlock = 384;

template <class Fn>
void for_row_blocks(const GemmArgs& a, Fn f) {
  for (int64_t m0 = 0; m0 < a.M; m0 += kRowBlock) {
    GemmArgs b = a;
    b.M = min_i64(kRowBlock, a.M - m0);
    b.x = a.x_transposed ? a.x + m0 : a.x + m0 * a.ldx;
    b.y = a.y_transposed ? a.y + m0 : a.y + m0 * a.ldy;
    f(b);
  }
}

// y = bias (or unchanged when accumulating) for an empty sum.
inline void gemm_empty_k(const GemmArgs& a) {
  if (a.accumulate) return;
  for (int64_t m = 0; m < a.M; ++m)
    for (int64_t n = 0; n < a.N; ++n) (a.y_transposed ? a.y[n * a.ldy + m] : a.y[m * a.ldy + n]) = a.bias ? a.bias[n] : 0.f;
}

template <class V>
void gemm_impl(const GemmArgs& a, bool parallel) {
  if (a.M <= 0 || a.N <= 0) return;
  if (a.K <= 0) return gemm_empty_k(a);
  if (a.M <= kRowIndependentRows && !a.x_transposed && !a.y_transposed) return gemv<V>(a, parallel);
  for_row_blocks(a, [&](const GemmArgs& block) { gemm_f32<V>(block, parallel); });
}

// ---------------------------------------------------------------------------------------------------
// Attention: per head, scores = Q·Kᵀ and out = P·V as GEMMs (or matrix-vector products when decoding),
// the score transforms and softmax vectorized over each query's allowed keys.

struct KeyRange {
  int64_t begin, end;
};

// The keys attention_allowed(i, ·) admits, which form one contiguous range.
inline KeyRange allowed_keys(int64_t i, int64_t n_keys, const AttentionShape& s) {
  if (i < s.prefix_len) return {0, min_i64(s.prefix_len, n_keys)};
  const int64_t begin = s.window > 0 ? max_i64(0, i - s.window + 1) : 0;
  return {begin, min_i64(i + 1, n_keys)};
}

// Turns one row of raw dot products into probabilities, as attention_reference does per key: rounding
// to act after the dot, the scale and each soft-cap step; softmax over the allowed range; probabilities
// rounded to act; 0 outside the range.
template <class V>
void softmax_row(float* row, int64_t n_keys, KeyRange r, const AttentionShape& s) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  const DType act = s.act;
  const F scale = V::set1(s.scale), cap = V::set1(s.softcap);
  float* p = row + r.begin;
  const int64_t n = r.end - r.begin;
  float mx = -__builtin_inff();
  store_each<V>(p, n, [&](int64_t i, int lanes) {
    F sc = round_act<V>(V::mul(round_act<V>(load_n<V>(p + i, lanes), act), scale), act);
    if (s.softcap > 0.f) {
      sc = round_act<V>(vtanh<V>(round_act<V>(V::div(sc, cap), act)), act);
      sc = round_act<V>(V::mul(sc, cap), act);
    }
    // Ignores NaN like attention_reference's `if (sc > mx)`.
    if (lanes == W) {
      const float lane_max = V::max_of(sc);
      if (lane_max > mx) mx = lane_max;
    } else {
      alignas(64) float tail[W];
      V::store(tail, sc);
      for (int j = 0; j < lanes; ++j)
        if (tail[j] > mx) mx = tail[j];
    }
    return sc;
  });
  const F vmx = V::set1(mx);
  map_inplace<V>(p, n, [&](F sc) { return vexp<V>(V::sub(sc, vmx)); });
  const float sum = vector_sum<V>(n, [&](int64_t i, int lanes) { return load_n<V>(p + i, lanes); });
  const F inv = V::set1(1.0f / sum);
  map_inplace<V>(p, n, [&](F e) { return round_act<V>(V::mul(e, inv), act); });
  for (int64_t j = 0; j < r.begin; ++j) row[j] = 0.f;
  for (int64_t j = r.end; j < n_keys; ++j) row[j] = 0.f;
}

// o[d] = Σ_j p[j] v[j][d] over the range, skipping zero probabilities like the reference.
template <class V>
void weighted_sum(const float* p, KeyRange r, const float* v, int64_t ldv, int64_t hd, float* o) {
  using F = typename V::F;
  constexpr int W = V::kWidth, kChunk = 8;
  for (int64_t d0 = 0; d0 < hd; d0 += kChunk * W) {
    const int64_t len = min_i64(kChunk * W, hd - d0);
    const int vectors = int(ceil_div(len, W));
    F acc[kChunk];
    for (int c = 0; c < kChunk; ++c) acc[c] = V::zero();
    for (int64_t j = r.begin; j < r.end; ++j) {
      if (p[j] == 0.f) continue;
      const F pj = V::set1(p[j]);
      const float* vr = v + j * ldv + d0;
      for (int c = 0; c < vectors; ++c)
        acc[c] = V::fmadd(pj, load_n<V>(vr + c * W, int(min_i64(W, len - c * W))), acc[c]);
    }
    for (int c = 0; c < vectors; ++c) {
      const int cnt = int(min_i64(W, len - c * W));
      if (cnt == W) V::store(o + d0 + c * W, acc[c]);
      else V::store(o + d0 + c * W, acc[c], cnt);
    }
  }
}

// Per (head, block of queries): scores S = Q·Kᵀ, the softmax rows, then out = P·V. Prefill computes
// both products as blocked GEMMs with the keys (resp. head dimensions) as the packed operand and the
// queries broadcast, so that both land row-major without a transposition; decoding uses matrix-vector
// products and a weighted sum over the allowed keys.
template <class V>
void attention_impl(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
                    const AttentionShape& s, float* out) {
  constexpr int64_t kQueryBlock = 128;
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = s.n_heads * hd, kv_stride = s.n_kv_heads * hd;
  const int64_t q_blocks = ceil_div(T, kQueryBlock);
  const bool decoding = T <= kGemvGroupRows;
#pragma omp parallel
  {
    float* scores = scratch<float>(kScores, size_t(min_i64(T, kQueryBlock) * n_keys));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t h = 0; h < s.n_heads; ++h)
      for (int64_t b = 0; b < q_blocks; ++b) {
        const int64_t kvh = h / group, t0 = b * kQueryBlock, rows = min_i64(kQueryBlock, T - t0);
        const float* q_h = q + t0 * q_stride + h * hd;
        const float* k_h = k + kvh * hd;
        const float* v_h = v + kvh * hd;
        float* o = out + t0 * q_stride + h * hd;
        GemmArgs qk;
        qk.y = scores;
        qk.ldy = n_keys;
        qk.K = hd;
        if (decoding) {  // S[t][j]: queries as x, keys as weight rows
          qk.x = q_h;
          qk.ldx = q_stride;
          qk.M = rows;
          qk.w = k_h;
          qk.ldw = kv_stride;
          qk.N = n_keys;
        } else {  // Sᵀ as the product: keys as x, queries as weight rows, written transposed
          qk.x = k_h;
          qk.ldx = kv_stride;
          qk.M = n_keys;
          qk.w = q_h;
          qk.ldw = q_stride;
          qk.N = rows;
          qk.y_transposed = true;
        }
        gemm_impl<V>(qk, false);
        for (int64_t t = 0; t < rows; ++t)
          softmax_row<V>(scores + t * n_keys, n_keys, allowed_keys(q_start + t0 + t, n_keys, s), s);
        if (decoding) {
          for (int64_t t = 0; t < rows; ++t)
            weighted_sum<V>(scores + t * n_keys, allowed_keys(q_start + t0 + t, n_keys, s), v_h, kv_stride,
                            hd, o + t * q_stride);
        } else {  // outᵀ[d][t] = Σ_j Vᵀ[d][j] P[t][j]: Vᵀ as (transposed) x, probabilities as weight rows
          GemmArgs pv;
          pv.x = v_h;
          pv.ldx = kv_stride;
          pv.x_transposed = true;
          pv.M = hd;
          pv.w = scores;
          pv.ldw = n_keys;
          pv.N = rows;
          pv.K = n_keys;
          pv.y = o;
          pv.ldy = q_stride;
          pv.y_transposed = true;
          gemm_impl<V>(pv, false);
        }
        for (int64_t t = 0; t < rows; ++t) round_span<V>(o + t * q_stride, hd, s.act);
      }
  }
}

}  // namespace
}  // namespace pg
