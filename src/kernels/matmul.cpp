// The scalar level's matrix product (portable C++, GCC vector extensions lowered to whatever the
// baseline target has) and the plain reference.
#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/isa_kernels.h"

namespace pg {
namespace {

typedef float v16 __attribute__((vector_size(64), aligned(4)));

constexpr int64_t kRowsPerBlock = 16;  // weight rows widened to f32 at once (fits L1/L2 for K up to ~4k)
constexpr int64_t kInputRowsPerPass = 256;  // x rows reused per weight block

inline v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

inline float hsum(v16 v) {
  float s = 0.f;
  for (int i = 0; i < 16; ++i) s += v[i];
  return s;
}

// out[i][j] = dot(x_i, w_j) for an MR x NR tile; x rows are ldx apart, w rows ldw apart.
template <int MR, int NR>
inline void tile_kernel(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t K,
                        float out[MR][NR]) {
  v16 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = v16{};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    v16 wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load16(w + j * ldw + k);
    for (int i = 0; i < MR; ++i) {
      v16 xv = load16(x + i * ldx + k);
      for (int j = 0; j < NR; ++j) acc[i][j] += xv * wv[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t kk = k; kk < K; ++kk) s += x[i * ldx + kk] * w[j * ldw + kk];
      out[i][j] = s;
    }
}

template <int MR, int NR>
inline void store_tile(const float* x, int64_t ldx, const float* w, int64_t K, int64_t m, int64_t n,
                       const float* bias, float* y, int64_t N) {
  float out[MR][NR];
  tile_kernel<MR, NR>(x + m * ldx, ldx, w, K, K, out);
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[(m + i) * N + n + j] = out[i][j] + (bias ? bias[n + j] : 0.f);
}

// y[m0:m1, n0:n0+nb] for one block of nb (<= kRowsPerBlock) weight rows starting at row n0; rows stored
// in a narrower type are widened into `scratch` first.
void compute_block(const float* x, int64_t m0, int64_t m1, const MatrixView& W, int64_t n0, int64_t nb,
                   float* scratch, const float* bias, float* y) {
  const int64_t K = W.cols, N = W.rows;
  const float* w;
  if (W.dtype == DType::F32) {
    w = static_cast<const float*>(W.row(n0));
  } else {
    to_f32(W.row(n0), W.dtype, scratch, size_t(nb * K));
    w = scratch;
  }
  int64_t m = m0;
  for (; m + 4 <= m1; m += 4) {
    int64_t j = 0;
    for (; j + 4 <= nb; j += 4) store_tile<4, 4>(x, K, w + j * K, K, m, n0 + j, bias, y, N);
    for (; j < nb; ++j) store_tile<4, 1>(x, K, w + j * K, K, m, n0 + j, bias, y, N);
  }
  for (; m < m1; ++m) {
    int64_t j = 0;
    for (; j + 4 <= nb; j += 4) store_tile<1, 4>(x, K, w + j * K, K, m, n0 + j, bias, y, N);
    for (; j < nb; ++j) store_tile<1, 1>(x, K, w + j * K, K, m, n0 + j, bias, y, N);
  }
}

}  // namespace

void scalar::matmul(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y) {
  const int64_t N = W.rows, K = W.cols;
  const int64_t blocks = (N + kRowsPerBlock - 1) / kRowsPerBlock;
  for (int64_t m0 = 0; m0 < M; m0 += kInputRowsPerPass) {
    const int64_t m1 = std::min(M, m0 + kInputRowsPerPass);
#pragma omp parallel
    {
      std::vector<float> scratch(W.dtype == DType::F32 ? 0 : size_t(kRowsPerBlock * K));
#pragma omp for schedule(static)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t n0 = b * kRowsPerBlock;
        compute_block(x, m0, m1, W, n0, std::min(kRowsPerBlock, N - n0), scratch.data(), bias, y);
      }
    }
  }
}

void matmul_reference(const float* x, int64_t M, const MatrixView& W, const float* bias, float* y) {
  const int64_t N = W.rows, K = W.cols;
  std::vector<float> w(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    to_f32(W.row(n), W.dtype, w.data(), size_t(K));
    for (int64_t m = 0; m < M; ++m) {
      float s = 0.f;
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * w[k];
      y[m * N + n] = s + (bias ? bias[n] : 0.f);
    }
  }
}

}  // namespace pg
