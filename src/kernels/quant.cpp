// Quantization, dequantization, the scalar level's quantized matrix product and the reference twin,
// and the dispatch of quant_matmul to the instruction-set levels (quant_kernels.h).
#include "kernels/quant.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/isa_kernels.h"
#include "kernels/matmul.h"
#include "kernels/quant_kernels.h"
#include "paligemma/error.h"

namespace pg {
namespace {

uint16_t block_scale_bits(const uint8_t* block) { return uint16_t(block[0] | (block[1] << 8)); }

void store_block_scale(uint8_t* block, float d) {
  const uint16_t bits = f32_to_f16(d);
  if (!std::isfinite(f16_to_f32(bits)))
    throw Error("a weight block's scale " + std::to_string(d) + " does not fit a float16 scale");
  block[0] = uint8_t(bits & 0xff);
  block[1] = uint8_t(bits >> 8);
}

// The 32 integers of one block.
void block_integers(const uint8_t* block, QuantType t, int32_t q[kQuantBlock]) {
  const uint8_t* qs = block + 2;
  if (t == QuantType::Q8_0) {
    for (int j = 0; j < kQuantBlock; ++j) q[j] = int8_t(qs[j]);
  } else {
    for (int j = 0; j < kQuantBlock / 2; ++j) {
      q[j] = int32_t(qs[j] & 0x0f) - 8;
      q[j + kQuantBlock / 2] = int32_t(qs[j] >> 4) - 8;
    }
  }
}

// The scalar level's matrix-vector product: per block d · Σ q·x in float32.
void quant_gemv_scalar(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kQuantBlock;
  const size_t block_bytes = quant_block_bytes(W.type);
#pragma omp parallel for schedule(static) if (W.rows * W.cols >= (int64_t{1} << 16))
  for (int64_t n = 0; n < W.rows; ++n) {
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    int32_t q[kQuantBlock];
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* block = W.row(n) + size_t(b) * block_bytes;
      block_integers(block, W.type, q);
      const float d = f16_to_f32(block_scale_bits(block));
      for (int64_t m = 0; m < M; ++m) {
        const float* xb = x + m * W.cols + b * kQuantBlock;
        float s = 0.f;
        for (int j = 0; j < kQuantBlock; ++j) s += float(q[j]) * xb[j];
        acc[m] += d * s;
      }
    }
    for (int64_t m = 0; m < M; ++m) y[m * W.rows + n] = acc[m] + (bias ? bias[n] : 0.f);
  }
}

void dequantize_rows_scalar(const QuantMatrix& W, int64_t r0, int64_t count, float* dst) {
  for (int64_t r = 0; r < count; ++r) dequantize_row(W.row(r0 + r), W.cols, W.type, dst + r * W.cols);
}

// Weight rows dequantized per slab: at least kMinSlabRows, because the GEMM packs x anew for every slab;
// more when rows are short, up to kSlabBytes of dequantized weights (the L2 cache); at most an even share
// of the rows per thread and round. docs/quantization.md has the measurements that chose them.
constexpr int64_t kSlabBytes = int64_t{1} << 21;
constexpr int64_t kMinSlabRows = 256;

// Prefill: each thread dequantizes slabs of weight rows into its own buffer and multiplies x by them
// with the level's GEMM on that thread alone (a parallel region inside this one runs one thread).
void quant_gemm_slabs(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t N = W.rows, K = W.cols;
  const Isa isa = active_isa();
  const bool bf16 = (isa == Isa::Avx512Bf16 || isa == Isa::Amx) && all_bf16_exact(x, M, K, K);
  const int64_t element = bf16 ? 2 : 4;
  const int64_t even_share = (N + 2 * omp_get_max_threads() - 1) / (2 * omp_get_max_threads());
  const int64_t wanted = std::max(kMinSlabRows, kSlabBytes / (K * element));
  const int64_t slab_rows = std::max<int64_t>(16, std::min(wanted, even_share) / 16 * 16);
  const int64_t slabs = (N + slab_rows - 1) / slab_rows;
#pragma omp parallel
  {
    // Each thread's slab buffers stay allocated between products (grow-only): megabytes freed after every
    // product would go back to the system and be faulted in again by the next.
    thread_local std::vector<uint16_t> halves;
    thread_local std::vector<float> floats, slab_out;
    if (bf16 && halves.size() < size_t(slab_rows * K)) halves.resize(size_t(slab_rows * K));
    if (!bf16 && floats.size() < size_t(slab_rows * K)) floats.resize(size_t(slab_rows * K));
    if (isa == Isa::Scalar && slab_out.size() < size_t(M * slab_rows)) slab_out.resize(size_t(M * slab_rows));
#pragma omp for schedule(dynamic, 1)
    for (int64_t s = 0; s < slabs; ++s) {
      const int64_t n0 = s * slab_rows, count = std::min(slab_rows, N - n0);
      const float* slab_bias = bias ? bias + n0 : nullptr;
      if (isa == Isa::Scalar) {
        dequantize_rows_scalar(W, n0, count, floats.data());
        scalar::matmul(x, M, MatrixView{floats.data(), DType::F32, count, K}, slab_bias, slab_out.data());
        for (int64_t m = 0; m < M; ++m)
          std::copy_n(slab_out.data() + m * count, count, y + m * N + n0);
        continue;
      }
#if defined(PG_X86_KERNELS)
      GemmArgs a;
      a.x = x;
      a.ldx = K;
      a.ldw = K;
      a.bias = slab_bias;
      a.y = y + n0;
      a.ldy = N;
      a.M = M;
      a.N = count;
      a.K = K;
      if (bf16) {
        avx512::dequantize_rows_bf16(W, n0, count, halves.data());
        a.w = halves.data();
        a.w_dtype = DType::BF16;
        if (isa == Isa::Amx) amx::gemm(a);
        else avx512bf16::gemm(a);
      } else {
        a.w = floats.data();
        a.w_dtype = DType::F32;
        if (isa == Isa::Avx2) {
          avx2::dequantize_rows_f32(W, n0, count, floats.data());
          avx2::gemm(a);
        } else {
          avx512::dequantize_rows_f32(W, n0, count, floats.data());
          avx512::gemm(a);
        }
      }
#endif
    }
  }
}

#if defined(PG_X86_KERNELS)
bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has;
}

// Decode with Q4_0 weights: x quantized per block to int8 once, then vpdpbusd (quant_avx512vnni.cpp).
void q4_gemv_vnni(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kQuantBlock;
  std::vector<int8_t> q(static_cast<size_t>(M * W.cols));
  std::vector<float> scales(static_cast<size_t>(M * blocks * 8));
  std::vector<int32_t> offsets(static_cast<size_t>(M * blocks * 8));
  for (int64_t m = 0; m < M; ++m)
    avx512vnni::quantize_activations(x + m * W.cols, blocks, q.data() + m * W.cols, scales.data() + m * blocks * 8,
                                     offsets.data() + m * blocks * 8);
  avx512vnni::q4_gemv_rows(q.data(), scales.data(), offsets.data(), M, W.cols, W, bias, y);
}

// Decode on the avx2 level: x quantized per block to int8 once per product, then vpmaddubsw (quant_avx2.cpp);
// for Q4_0 in the pair layout its kernel reads.
void quant_gemv_avx2(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  const int64_t blocks = W.cols / kQuantBlock;
  if (W.type == QuantType::Q8_0) {
    std::vector<int8_t> q(static_cast<size_t>(M * W.cols));
    std::vector<float> scales(static_cast<size_t>(M * blocks));
    for (int64_t m = 0; m < M; ++m)
      avx2::quantize_activations(x + m * W.cols, blocks, q.data() + m * W.cols, scales.data() + m * blocks);
    return avx2::q8_gemv_int8(q.data(), scales.data(), M, W, bias, y);
  }
  const int64_t pairs = (blocks + 1) / 2;
  std::vector<int8_t> q(static_cast<size_t>(M * pairs * 64));
  std::vector<float> scales(static_cast<size_t>(M * pairs * 8));
  std::vector<int32_t> offsets(static_cast<size_t>(M * pairs * 8));
  for (int64_t m = 0; m < M; ++m)
    avx2::quantize_activations_q4_pairs(x + m * W.cols, blocks, q.data() + m * pairs * 64,
                                        scales.data() + m * pairs * 8, offsets.data() + m * pairs * 8);
  avx2::q4_gemv_pairs(q.data(), scales.data(), offsets.data(), M, W, bias, y);
}
#endif

}  // namespace

void quantize_row(const float* x, int64_t n, QuantType t, void* dst) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  const size_t block_bytes = quant_block_bytes(t);
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    uint8_t* block = out + size_t(b) * block_bytes;
    float amax = 0.f, extreme = 0.f;
    for (int j = 0; j < kQuantBlock; ++j) {
      if (!std::isfinite(xb[j])) throw Error("a weight is not a finite number (" + std::to_string(xb[j]) + ")");
      if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), extreme = xb[j];
    }
    if (t == QuantType::Q8_0) {
      const float d = amax / 127.f;
      const float id = d != 0.f ? 1.f / d : 0.f;
      store_block_scale(block, d);
      for (int j = 0; j < kQuantBlock; ++j) block[2 + j] = uint8_t(int8_t(std::round(xb[j] * id)));
    } else {
      const float d = extreme / -8.f;
      const float id = d != 0.f ? 1.f / d : 0.f;
      store_block_scale(block, d);
      for (int j = 0; j < kQuantBlock / 2; ++j) {
        const int lo = std::min(15, int(int8_t(xb[j] * id + 8.5f)));
        const int hi = std::min(15, int(int8_t(xb[j + kQuantBlock / 2] * id + 8.5f)));
        block[2 + j] = uint8_t(lo | (hi << 4));
      }
    }
  }
}

void dequantize_row(const void* src, int64_t n, QuantType t, float* dst) {
  const uint8_t* in = static_cast<const uint8_t*>(src);
  const size_t block_bytes = quant_block_bytes(t);
  int32_t q[kQuantBlock];
  for (int64_t b = 0; b < n / kQuantBlock; ++b) {
    const uint8_t* block = in + size_t(b) * block_bytes;
    const float d = f16_to_f32(block_scale_bits(block));
    block_integers(block, t, q);
    for (int j = 0; j < kQuantBlock; ++j) dst[b * kQuantBlock + j] = d * float(q[j]);
  }
}

namespace {

// M <= kQuantGemvRows, the matrix-vector kernels' register budget.
constexpr int64_t kQuantGemvRows = 4;

void quant_gemv(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
#if defined(PG_X86_KERNELS)
  switch (active_isa()) {
    case Isa::Amx:
    case Isa::Avx512Bf16:
      if (W.type == QuantType::Q4_0 && cpu_has_vnni()) return q4_gemv_vnni(x, M, W, bias, y);
      return avx512::quant_gemv(x, M, W, bias, y);
    case Isa::Avx512: return avx512::quant_gemv(x, M, W, bias, y);
    case Isa::Avx2: return quant_gemv_avx2(x, M, W, bias, y);
    case Isa::Scalar: break;
  }
#endif
  quant_gemv_scalar(x, M, W, bias, y);
}

}  // namespace

void quant_matmul(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  if (M <= 0 || W.rows <= 0) return;
  if (M > kRowIndependentRows) return quant_gemm_slabs(x, M, W, bias, y);
  // Decode, batched or not: the matrix-vector kernels, kQuantGemvRows x rows per pass over the weights, so
  // that each row is computed as it would be alone (kRowIndependentRows). Above 4 rows the weights are read once
  // per pass.
  for (int64_t m0 = 0; m0 < M; m0 += kQuantGemvRows)
    quant_gemv(x + m0 * W.cols, std::min(kQuantGemvRows, M - m0), W, bias, y + m0 * W.rows);
}

void quant_matmul_reference(const float* x, int64_t M, const QuantMatrix& W, const float* bias, float* y) {
  std::vector<float> w(static_cast<size_t>(W.cols));
  for (int64_t n = 0; n < W.rows; ++n) {
    dequantize_row(W.row(n), W.cols, W.type, w.data());
    for (int64_t m = 0; m < M; ++m) {
      float s = 0.f;
      for (int64_t k = 0; k < W.cols; ++k) s += x[m * W.cols + k] * w[size_t(k)];
      y[m * W.rows + n] = s + (bias ? bias[n] : 0.f);
    }
  }
}

}  // namespace pg
