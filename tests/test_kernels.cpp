// Optimized kernels against their plain reference twins on odd shapes, at every instruction-set level
// this CPU supports (the level is a test parameter, switched programmatically; a level the CPU lacks is
// skipped by name); hand-worked cases for the rest.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "paligemma/error.h"
#include "test_util.h"

namespace pg {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = round_to_dtype(x, DType::BF16);
  return v;
}

// Weights stored as `dtype`, plus their exact float32 values.
struct StoredMatrix {
  std::vector<uint16_t> half;
  std::vector<float> full;
  MatrixView view;
};

StoredMatrix store_matrix(std::vector<float> values, int64_t rows, int64_t cols, DType dtype) {
  StoredMatrix m;
  m.full = std::move(values);
  if (dtype != DType::F32) {
    m.half.resize(m.full.size());
    for (size_t i = 0; i < m.full.size(); ++i) {
      m.half[i] = dtype == DType::BF16 ? f32_to_bf16(m.full[i]) : f32_to_f16(m.full[i]);
      m.full[i] = dtype == DType::BF16 ? bf16_to_f32(m.half[i]) : f16_to_f32(m.half[i]);
    }
    m.view = MatrixView{m.half.data(), dtype, rows, cols};
  } else {
    m.view = MatrixView{m.full.data(), dtype, rows, cols};
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Levels.

Isa level_of(Isa isa) { return isa; }
template <class... Rest>
Isa level_of(const std::tuple<Isa, Rest...>& p) {
  return std::get<0>(p);
}

// Runs the test at its level (skipped where the CPU lacks it) and restores the previous level after.
template <class Param>
class AtLevel : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    const Isa isa = level_of(this->GetParam());
    if (!isa_supported(isa)) GTEST_SKIP() << "this CPU lacks the " << isa_name(isa) << " kernel level";
    set_active_isa(isa);
  }

 private:
  test::RestoreActiveIsa restore_;
};

const auto kLevels = ::testing::ValuesIn(kAllIsas);

std::string level_name(const ::testing::TestParamInfo<Isa>& info) { return isa_name(info.param); }

TEST(CpuFeatures, LevelsNestAndParse) {
  EXPECT_TRUE(isa_supported(Isa::Scalar));
  EXPECT_TRUE(isa_supported(best_supported_isa()));
  bool below_supported = true;
  for (Isa isa : kAllIsas) {
    EXPECT_EQ(parse_isa(isa_name(isa)), isa);
    // Each level needs everything the levels below it need.
    if (!isa_supported(isa)) below_supported = false;
    else EXPECT_TRUE(below_supported) << isa_name(isa);
  }
  EXPECT_THROW(parse_isa("avx1024"), Error);
}

TEST(CpuFeatures, PgIsaValueChoosesOrRefuses) {
  EXPECT_EQ(choose_isa(nullptr), best_supported_isa());
  EXPECT_EQ(choose_isa(""), best_supported_isa());
  EXPECT_EQ(choose_isa("scalar"), Isa::Scalar);
  EXPECT_THROW(choose_isa("fastest"), Error);
  for (Isa isa : kAllIsas) {
    if (isa_supported(isa)) EXPECT_EQ(choose_isa(isa_name(isa)), isa);
    else EXPECT_THROW(choose_isa(isa_name(isa)), Error) << isa_name(isa);  // never silently another level
  }
}

// ---------------------------------------------------------------------------------------------------
// Matrix products.

const int64_t kRowsM[] = {1, 2, 3, 5, 8, 16, 17, 260};
const int64_t kRowsN[] = {1, 7, 33, 70};
const int64_t kColsK[] = {1, 15, 33, 2051};

using MatmulParam = std::tuple<Isa, DType>;
class MatmulAtLevel : public AtLevel<MatmulParam> {};

Weight weight_of_nothing() { return MatrixView{nullptr, DType::F32, 3, 4}; }

std::string matmul_name(const ::testing::TestParamInfo<MatmulParam>& info) {
  return std::string(isa_name(std::get<0>(info.param))) + "_" + dtype_name(std::get<1>(info.param));
}

// Any float32 summation order of K products lies within (K - 1) u Σ|terms| of the exact sum (u = 2^-24),
// so two orders differ by at most twice that; the bias adds one more rounding.
void expect_within_reassociation(const std::vector<float>& x, const StoredMatrix& w, const float* bias, int64_t M,
                                 const std::vector<float>& y, const std::vector<float>& ref) {
  const int64_t N = w.view.rows, K = w.view.cols;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double magnitude = bias ? std::fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; ++k) magnitude += std::fabs(double(x[size_t(m * K + k)]) * w.full[size_t(n * K + k)]);
      const double tol = 2.0 * double(K + 1) * std::ldexp(1.0, -24) * magnitude;
      ASSERT_LE(std::fabs(double(y[size_t(m * N + n)]) - ref[size_t(m * N + n)]), tol)
          << "M=" << M << " N=" << N << " K=" << K << " at (" << m << ", " << n << ")";
    }
}

TEST_P(MatmulAtLevel, RandomValuesWithinReassociationError) {
  const DType dtype = std::get<1>(GetParam());
  for (int64_t M : kRowsM)
    for (int64_t N : kRowsN)
      for (int64_t K : kColsK) {
        const StoredMatrix w = store_matrix(random_vector(size_t(N * K), uint32_t(7 + N + K)), N, K, dtype);
        const std::vector<float> bias = random_vector(size_t(N), 13);
        // Both an x the bf16 product path accepts and one it must refuse.
        for (bool bf16_exact : {true, false}) {
          std::vector<float> x = random_vector(size_t(M * K), uint32_t(11 + M));
          if (bf16_exact) x = rounded_to_bf16(x);
          const float* b = bf16_exact ? bias.data() : nullptr;
          std::vector<float> y(size_t(M * N), -1.f), ref(size_t(M * N));
          matmul(x.data(), M, w.view, b, y.data());
          matmul_reference(x.data(), M, w.view, b, ref.data());
          expect_within_reassociation(x, w, b, M, y, ref);
        }
      }
}

// Values whose products and every partial sum are exact in float32, so that any summation order gives
// the reference's result bit for bit: x = (1 + 2^-7) s (bf16-exact) or (1 + 2^-10) s (not bf16-exact),
// s in {±1, ±2}, weights in {-2 .. 2}. Products such as (1 + 2^-7) · 3 need 9 significant bits, so a
// path that rounded products (or a non-bf16-exact x) to bf16 would be caught.
void expect_exact_sums(int64_t M, int64_t N, int64_t K, DType dtype) {
  std::vector<float> wv(size_t(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) wv[size_t(n * K + k)] = float((3 * n + 5 * k) % 5 - 2);
  const StoredMatrix w = store_matrix(wv, N, K, dtype);
  for (float fraction : {0x1p-7f, 0x1p-10f}) {
    std::vector<float> x(size_t(M * K));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t k = 0; k < K; ++k) {
        const float s = ((m + k) % 2 ? -1.f : 1.f) * ((m * 7 + k) % 3 ? 1.f : 2.f);
        x[size_t(m * K + k)] = (1.f + fraction) * s;
      }
    std::vector<float> y(size_t(M * N), -1.f), ref(size_t(M * N));
    matmul(x.data(), M, w.view, nullptr, y.data());
    matmul_reference(x.data(), M, w.view, nullptr, ref.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y[i], ref[i]) << "M=" << M << " N=" << N << " K=" << K << " fraction=" << fraction << " at " << i;
  }
}

TEST_P(MatmulAtLevel, ExactWhereEverySumIsRepresentable) {
  for (int64_t M : kRowsM)
    for (int64_t N : kRowsN)
      for (int64_t K : kColsK) expect_exact_sums(M, N, K, std::get<1>(GetParam()));
}

// Long sequences are packed in blocks of rows.
TEST_P(MatmulAtLevel, ExactForManyRows) { expect_exact_sums(1000, 70, 67, std::get<1>(GetParam())); }

// x = 1 + 2^-10 is not a bfloat16 (it would round to 1): the sum must keep the 2^-10 parts.
TEST_P(MatmulAtLevel, NonBf16ExactXIsNotRoundedToBf16) {
  const DType dtype = std::get<1>(GetParam());
  const int64_t M = 17, N = 33, K = 64;
  const StoredMatrix w = store_matrix(std::vector<float>(size_t(N * K), 1.f), N, K, dtype);
  const std::vector<float> x(size_t(M * K), 1.f + 0x1p-10f);
  std::vector<float> y(size_t(M * N));
  matmul(x.data(), M, w.view, nullptr, y.data());
  for (float v : y) ASSERT_EQ(v, 64.f + 64 * 0x1p-10f);
}

// Batched decode: up to kRowIndependentRows x rows (matmul.h), each row of the product must be bit
// for bit that row's product alone, whatever the other rows hold (bf16-exact or not), so that requests
// decoded together get the answers they get alone.
TEST_P(MatmulAtLevel, DecodeRowsDoNotDependOnTheBatch) {
  const DType dtype = std::get<1>(GetParam());
  for (int64_t K : {15, 33, 2051}) {
    const int64_t N = 37;
    const StoredMatrix w = store_matrix(random_vector(size_t(N * K), uint32_t(K)), N, K, dtype);
    const std::vector<float> bias = random_vector(size_t(N), 5);
    for (int64_t M = 1; M <= kRowIndependentRows; ++M)
      for (bool mixed : {false, true}) {  // every row bf16-exact, or every other row
        std::vector<float> x = random_vector(size_t(M * K), uint32_t(100 + M));
        for (int64_t m = 0; m < M; ++m)
          if (!mixed || m % 2 == 0)
            for (int64_t k = 0; k < K; ++k) x[size_t(m * K + k)] = round_to_dtype(x[size_t(m * K + k)], DType::BF16);
        const std::string unlike = test::first_row_unlike_alone(x, M, K, N, [&](const float* rows, int64_t count, float* y) {
          matmul(rows, count, w.view, bias.data(), y);
        });
        ASSERT_EQ(unlike, "") << "M=" << M << " K=" << K << " mixed=" << mixed;
      }
  }
}

// linear() on a dense Weight: Rows::Shared is matmul itself; Rows::Independent keeps every row as it is alone
// for any number of rows (passes of kRowIndependentRows); linear_reference is matmul_reference.
TEST_P(MatmulAtLevel, LinearOnDenseWeights) {
  const DType dtype = std::get<1>(GetParam());
  for (int64_t K : {15, 2051}) {
    const int64_t N = 33;
    const StoredMatrix w = store_matrix(random_vector(size_t(N * K), uint32_t(K + 1)), N, K, dtype);
    const Weight weight = w.view;
    const std::vector<float> bias = random_vector(size_t(N), 6);
    for (int64_t M : {1, 5, 16, 17, 19, 40, 260}) {
      const std::vector<float> x = rounded_to_bf16(random_vector(size_t(M * K), uint32_t(200 + M)));
      std::vector<float> got(size_t(M * N)), want(size_t(M * N));
      linear(x.data(), M, weight, bias.data(), got.data());
      matmul(x.data(), M, w.view, bias.data(), want.data());
      ASSERT_EQ(got, want) << "M=" << M << " K=" << K;
      linear_reference(x.data(), M, weight, bias.data(), got.data());
      matmul_reference(x.data(), M, w.view, bias.data(), want.data());
      ASSERT_EQ(got, want) << "M=" << M << " K=" << K;
      const std::string unlike = test::first_row_unlike_alone(x, M, K, N, [&](const float* rows, int64_t count, float* y) {
        linear(rows, count, weight, bias.data(), y, Rows::Independent);
      });
      ASSERT_EQ(unlike, "") << "M=" << M << " K=" << K;
    }
  }
  float untouched = 7.f;
  linear(nullptr, 0, weight_of_nothing(), nullptr, &untouched, Rows::Independent);
  EXPECT_EQ(untouched, 7.f);
}

TEST_P(MatmulAtLevel, WeightRowIsTheStoredRowInFloat32) {
  const DType dtype = std::get<1>(GetParam());
  const int64_t N = 7, K = 33;
  const StoredMatrix w = store_matrix(random_vector(size_t(N * K), 9), N, K, dtype);
  std::vector<float> row(static_cast<size_t>(K));
  for (int64_t r = 0; r < N; ++r) {
    weight_row_f32(w.view, r, row.data());
    ASSERT_EQ(row, std::vector<float>(w.full.begin() + r * K, w.full.begin() + (r + 1) * K)) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, MatmulAtLevel,
                         ::testing::Combine(kLevels, ::testing::Values(DType::F32, DType::BF16, DType::F16)),
                         matmul_name);

TEST(Matmul, HandWorked) {
  const float w[] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const float x[] = {1, 0, -1, 2, 1, 0};  // [2, 3]
  const float b[] = {0.5f, -1};
  float y[4];
  matmul(x, 2, MatrixView{w, DType::F32, 2, 3}, b, y);
  EXPECT_FLOAT_EQ(y[0], 1 - 3 + 0.5f);
  EXPECT_FLOAT_EQ(y[1], 4 - 6 - 1);
  EXPECT_FLOAT_EQ(y[2], 2 + 2 + 0.5f);
  EXPECT_FLOAT_EQ(y[3], 8 + 5 - 1);
}

// ---------------------------------------------------------------------------------------------------
// Element-wise and row-wise operations.

class OpsAtLevel : public AtLevel<Isa> {};

const int64_t kLengths[] = {1, 15, 17, 33, 2051, 3 * 16384 + 5};

TEST_P(OpsAtLevel, RoundInplaceIsBitExact) {
  std::vector<float> special = {0.f, -0.f, 1.f, -1.5f, std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::denorm_min(), 1e-40f, 65504.f, 65520.f, 1e-8f};
  for (uint32_t bits : {0x3f808000u, 0x3f818000u, 0x7fc00001u, 0x7f800001u, 0xffa00000u, 0x3f7fffffu}) {
    float f;
    std::memcpy(&f, &bits, 4);
    special.push_back(f);  // bf16 ties to even both ways, quiet and signalling NaNs, largest below 1
  }
  for (DType t : {DType::BF16, DType::F16, DType::F32})
    for (int64_t n : kLengths) {
      std::vector<float> x = random_vector(size_t(n), uint32_t(n), 100.f);
      for (size_t i = 0; i < x.size() && i < special.size(); ++i) x[x.size() - 1 - i] = special[i];
      std::vector<float> ref = x;
      round_inplace(x.data(), x.size(), t);
      round_inplace_reference(ref.data(), ref.size(), t);
      ASSERT_EQ(std::memcmp(x.data(), ref.data(), x.size() * 4), 0) << dtype_name(t) << " n=" << n;
    }
}

TEST_P(OpsAtLevel, NormsMatchReference) {
  for (int64_t dim : {1, 15, 17, 33, 1152, 2051})
    for (int64_t rows : {1, 3, 33}) {
      const auto x = random_vector(size_t(rows * dim), uint32_t(dim), 3.f);
      auto shifted = x;
      for (float& v : shifted) v += 5.f;  // a mean far from 0 for layer_norm's centring
      const auto w = random_vector(size_t(dim), 2), b = random_vector(size_t(dim), 3);
      std::vector<float> y(x.size()), ref(x.size());
      rms_norm(x.data(), rows, dim, w.data(), 1.f, 1e-6f, y.data());
      rms_norm_reference(x.data(), rows, dim, w.data(), 1.f, 1e-6f, ref.data());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 2e-6f * (1 + std::fabs(ref[i]))) << "rms " << dim;
      layer_norm(shifted.data(), rows, dim, w.data(), b.data(), 1e-6f, y.data());
      layer_norm_reference(shifted.data(), rows, dim, w.data(), b.data(), 1e-6f, ref.data());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-5f * (1 + std::fabs(ref[i]))) << "ln " << dim;
      // In place, as the model calls them.
      std::vector<float> inplace = x;
      rms_norm(inplace.data(), rows, dim, w.data(), 1.f, 1e-6f, inplace.data());
      rms_norm(x.data(), rows, dim, w.data(), 1.f, 1e-6f, y.data());
      ASSERT_EQ(inplace, y);
    }
}

TEST_P(OpsAtLevel, GeluMatchesReference) {
  for (int64_t n : kLengths) {
    // Values across tanh's two formulas (|z| < 0.625 and above) and its saturation.
    auto x = random_vector(size_t(n), uint32_t(n) + 1, 4.f);
    auto ref = x;
    gelu_tanh(x.data(), n);
    gelu_tanh_reference(ref.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(x[size_t(i)], ref[size_t(i)], 1e-6f * (1 + std::fabs(ref[size_t(i)])));
    for (DType act : {DType::F32, DType::BF16, DType::F16}) {
      auto a = random_vector(size_t(n), uint32_t(n) + 2, 3.f), b = random_vector(size_t(n), uint32_t(n) + 3);
      a = rounded_to_bf16(a);
      auto a_ref = a;
      gelu_tanh_mul(a.data(), b.data(), n, act);
      gelu_tanh_mul_reference(a_ref.data(), b.data(), n, act);
      // A tanh one float32 ulp away can move a rounding to act by one step, twice.
      const float step = act == DType::BF16 ? 0x1p-7f : act == DType::F16 ? 0x1p-10f : 1e-6f;
      for (int64_t i = 0; i < n; ++i) {
        const float r = a_ref[size_t(i)];
        ASSERT_NEAR(a[size_t(i)], r, 2 * step * std::fabs(r) + 1e-6f * std::fabs(b[size_t(i)])) << dtype_name(act);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, OpsAtLevel, kLevels, level_name);

TEST(Dtype, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(45.254833f)), 45.25f);  // sqrt(2048) as the reference casts it
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(59.866517f)), 59.75f);  // sqrt(3584)
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(67.882248f)), 68.0f);   // sqrt(4608)
  EXPECT_EQ(f16_to_f32(f32_to_f16(59.866517f)), 59.875f);
}

TEST(Ops, RmsNormGemmaScale) {
  const float x[] = {3, 4};
  const float w[] = {0, 1};  // effective scale (1 + w)
  float y[2];
  rms_norm(x, 1, 2, w, 1.f, 0.f, y);
  const float inv = 1.f / std::sqrt(12.5f);
  EXPECT_FLOAT_EQ(y[0], 3 * inv);
  EXPECT_FLOAT_EQ(y[1], 4 * inv * 2);
}

TEST(Ops, LayerNorm) {
  const float x[] = {1, 2, 3, 4};
  const float w[] = {1, 1, 2, 1}, b[] = {0, 0, 0, 1};
  float y[4];
  layer_norm(x, 1, 4, w, b, 0.f, y);
  const float sd = std::sqrt(1.25f);
  EXPECT_NEAR(y[0], -1.5f / sd, 1e-6);
  EXPECT_NEAR(y[2], 2 * 0.5f / sd, 1e-6);
  EXPECT_NEAR(y[3], 1.5f / sd + 1, 1e-6);
}

TEST(Ops, GeluTanhKnownValues) {
  float x[] = {0.f, 1.f, -1.f, 3.f};
  gelu_tanh(x, 4);
  EXPECT_NEAR(x[0], 0.f, 1e-7);
  EXPECT_NEAR(x[1], 0.8411919906f, 1e-6);  // torch gelu(approximate="tanh")(1)
  EXPECT_NEAR(x[2], -0.1588080094f, 1e-6);
  EXPECT_NEAR(x[3], 2.9963627f, 1e-5);
}

TEST(Ops, RopeRotatesHalvesAndPreservesNorm) {
  // head_dim 4: pairs (0,2) and (1,3); position 1, theta 10000 -> angles 1 and 1/100.
  float x[] = {1, 2, 3, 4};
  const int64_t pos = 1;
  rope(x, 1, 1, 4, &pos, 10000.f);
  EXPECT_NEAR(x[0], std::cos(1.f) - 3 * std::sin(1.f), 1e-6);
  EXPECT_NEAR(x[2], 3 * std::cos(1.f) + std::sin(1.f), 1e-6);
  EXPECT_NEAR(x[1], 2 * std::cos(0.01f) - 4 * std::sin(0.01f), 1e-6);
  EXPECT_NEAR(x[3], 4 * std::cos(0.01f) + 2 * std::sin(0.01f), 1e-6);
}

// ---------------------------------------------------------------------------------------------------
// Attention.

TEST(Attention, PrefixLmMask) {
  AttentionShape s;
  s.prefix_len = 3;
  EXPECT_TRUE(attention_allowed(0, 2, s));   // prefix sees the whole prefix
  EXPECT_FALSE(attention_allowed(2, 3, s));  // but not the suffix
  EXPECT_TRUE(attention_allowed(4, 4, s));
  EXPECT_TRUE(attention_allowed(4, 0, s));
  EXPECT_FALSE(attention_allowed(3, 4, s));  // suffix is causal
  s.window = 2;
  EXPECT_TRUE(attention_allowed(0, 2, s));   // prefix pairs ignore the window
  EXPECT_FALSE(attention_allowed(4, 2, s));  // i - j >= window is hidden
  EXPECT_TRUE(attention_allowed(4, 3, s));
}

// The reference against a direct evaluation of its definition (double precision).
TEST(Attention, ReferenceMatchesDefinitionWithGqaSoftcapAndWindow) {
  AttentionShape s;
  s.n_heads = 4;
  s.n_kv_heads = 2;
  s.head_dim = 5;
  s.scale = 0.3f;
  s.softcap = 2.f;
  s.prefix_len = 4;
  s.window = 3;
  const int64_t n = 7, qd = s.n_heads * s.head_dim, kd = s.n_kv_heads * s.head_dim;
  const auto q = random_vector(size_t(n * qd), 1), k = random_vector(size_t(n * kd), 2), v = random_vector(size_t(n * kd), 3);
  std::vector<float> out(size_t(n * qd));
  attention_reference(q.data(), n, 0, k.data(), v.data(), n, s, out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t kh = h / 2;
      std::vector<double> p(size_t(n), 0.0);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (!attention_allowed(i, j, s)) continue;
        double d = 0;
        for (int64_t e = 0; e < s.head_dim; ++e) d += double(q[size_t(i * qd + h * 5 + e)]) * k[size_t(j * kd + kh * 5 + e)];
        d = 2.0 * std::tanh(d * 0.3 / 2.0);
        p[size_t(j)] = std::exp(d);
        sum += p[size_t(j)];
      }
      for (int64_t e = 0; e < s.head_dim; ++e) {
        double o = 0;
        for (int64_t j = 0; j < n; ++j) o += p[size_t(j)] / sum * v[size_t(j * kd + kh * 5 + e)];
        EXPECT_NEAR(out[size_t(i * qd + h * 5 + e)], o, 1e-5);
      }
    }
  // Decoding one row against the cache gives the same as the full pass.
  std::vector<float> last(static_cast<size_t>(qd));
  attention_reference(q.data() + (n - 1) * qd, 1, n - 1, k.data(), v.data(), n, s, last.data());
  for (int64_t e = 0; e < qd; ++e) EXPECT_NEAR(last[size_t(e)], out[size_t((n - 1) * qd + e)], 1e-6);
}

class AttentionAtLevel : public AtLevel<Isa> {};

struct AttentionCase {
  int64_t T, q_start, n_heads, n_kv_heads, head_dim, prefix_len, window;
  float softcap;
};

TEST_P(AttentionAtLevel, MatchesReference) {
  const AttentionCase cases[] = {
      {7, 0, 4, 2, 5, 4, 3, 2.f},        // GQA, soft-cap, window, prefix shorter than the prompt
      {17, 0, 3, 1, 33, 17, 0, 0.f},     // multi-query, all prefix, odd head_dim
      {1, 40, 2, 1, 72, 30, 0, 0.f},     // decoding after a prefix
      {3, 38, 4, 4, 16, 30, 5, 50.f},    // a few decode rows with a window
      {130, 0, 2, 2, 72, 130, 0, 0.f},   // more queries than one query block
      {140, 0, 2, 1, 256, 100, 20, 30.f} // causal suffix with window after a prefix
  };
  for (const AttentionCase& c : cases)
    for (DType act : {DType::F32, DType::BF16, DType::F16}) {
      AttentionShape s;
      s.n_heads = c.n_heads;
      s.n_kv_heads = c.n_kv_heads;
      s.head_dim = c.head_dim;
      s.scale = 1.f / std::sqrt(float(c.head_dim));
      s.softcap = c.softcap;
      s.prefix_len = c.prefix_len;
      s.window = c.window;
      s.act = act;
      const int64_t n_keys = c.q_start + c.T, qd = c.n_heads * c.head_dim, kd = c.n_kv_heads * c.head_dim;
      // Activations as the model passes them: already rounded to act.
      auto q = random_vector(size_t(c.T * qd), 1, 2.f), k = random_vector(size_t(n_keys * kd), 2, 2.f),
           v = random_vector(size_t(n_keys * kd), 3);
      round_inplace_reference(q.data(), q.size(), act);
      round_inplace_reference(k.data(), k.size(), act);
      round_inplace_reference(v.data(), v.size(), act);
      std::vector<float> out(q.size(), -7.f), ref(q.size());
      attention(q.data(), c.T, c.q_start, k.data(), v.data(), n_keys, s, out.data());
      attention_reference(q.data(), c.T, c.q_start, k.data(), v.data(), n_keys, s, ref.data());
      // float32: reassociation only. bf16/f16: a score or probability may round one step the other way.
      const float tol = act == DType::F32 ? 2e-5f : act == DType::BF16 ? 3e-2f : 4e-3f;
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], tol * (1 + std::fabs(ref[i])))
            << "T=" << c.T << " head_dim=" << c.head_dim << " act=" << dtype_name(act) << " at " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Levels, AttentionAtLevel, kLevels, level_name);

}  // namespace
}  // namespace pg
