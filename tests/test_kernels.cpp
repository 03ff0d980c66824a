// Optimized kernels against their plain reference twins, on odd shapes; hand-worked cases for the rest.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace pg {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Weights stored as `dtype`, plus their exact float32 values.
struct StoredMatrix {
  std::vector<uint16_t> half;
  std::vector<float> full;
  MatrixView view;
};

StoredMatrix make_matrix(int64_t rows, int64_t cols, DType dtype, uint32_t seed) {
  StoredMatrix m;
  m.full = random_vector(size_t(rows * cols), seed);
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

class MatmulTest : public ::testing::TestWithParam<std::tuple<DType, int64_t, int64_t, int64_t>> {};

TEST_P(MatmulTest, MatchesReference) {
  const auto [dtype, M, N, K] = GetParam();
  const StoredMatrix w = make_matrix(N, K, dtype, 7);
  const std::vector<float> x = random_vector(size_t(M * K), 11);
  const std::vector<float> bias = random_vector(size_t(N), 13);
  std::vector<float> y(size_t(M * N)), ref(size_t(M * N));
  matmul(x.data(), M, w.view, bias.data(), y.data());
  matmul_reference(x.data(), M, w.view, bias.data(), ref.data());
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], 1e-4f * std::sqrt(float(K)) + 1e-5f * std::fabs(ref[i])) << "at " << i;
  // Without bias, too.
  matmul(x.data(), M, w.view, nullptr, y.data());
  matmul_reference(x.data(), M, w.view, nullptr, ref.data());
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-4f * std::sqrt(float(K)) + 1e-5f * std::fabs(ref[i]));
}

INSTANTIATE_TEST_SUITE_P(OddShapes, MatmulTest,
                         ::testing::Combine(::testing::Values(DType::F32, DType::BF16, DType::F16),
                                            ::testing::Values(1, 3, 5, 17, 260),
                                            ::testing::Values(1, 7, 33),
                                            ::testing::Values(1, 15, 16, 17, 100)));

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

// Attention against a direct evaluation of its definition.
TEST(Attention, MatchesDefinitionWithGqaSoftcapAndWindow) {
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
  attention(q.data(), n, 0, k.data(), v.data(), n, s, out.data());
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
  attention(q.data() + (n - 1) * qd, 1, n - 1, k.data(), v.data(), n, s, last.data());
  for (int64_t e = 0; e < qd; ++e) EXPECT_NEAR(last[size_t(e)], out[size_t((n - 1) * qd + e)], 1e-6);
}

}  // namespace
}  // namespace pg
