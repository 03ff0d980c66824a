// Block quantization (Q8_0, Q4_0): hand-worked blocks, the quantized matrix products against their
// reference twin at every instruction-set level on odd shapes, the GGUF reader/writer and its error
// paths, quantized fixture models against the same models on dequantized weights, and agreement bounds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "loader/checkpoint.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "model/paligemma.h"
#include "convert/quantize.h"
#include "eval/agreement.h"
#include "paligemma/error.h"
#include "test_util.h"
#include "paligemma/image.h"
#include "tasks/prompt.h"

namespace pg {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = PG_FIXTURES_DIR;

using test::error_of;
using test::TempDir;

std::vector<float> random_values(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

float scale_of_block(const uint8_t* block) {
  uint16_t bits;
  std::memcpy(&bits, block, 2);
  return f16_to_f32(bits);
}

// ---------------------------------------------------------------------------------------------------
// Blocks.

TEST(QuantBlocks, Q8HandWorked) {
  // max |x| = 127 gives d = 1: q = round(x), halves away from zero (ggml's roundf).
  std::vector<float> x(32, 0.f);
  const float head[] = {127.f, -127.f, 0.5f, -0.5f, 2.5f, -2.5f, 1.49f, -3.7f};
  std::copy(std::begin(head), std::end(head), x.begin());
  uint8_t block[34];
  quantize_row(x.data(), 32, QuantType::Q8_0, block);
  EXPECT_EQ(block[0] | (block[1] << 8), 0x3c00);  // float16 1.0
  const int8_t expected[] = {127, -127, 1, -1, 3, -3, 1, -4};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(int8_t(block[2 + j]), expected[j]) << j;
  for (int j = 8; j < 32; ++j) EXPECT_EQ(block[2 + j], 0) << j;
  float back[32];
  dequantize_row(block, 32, QuantType::Q8_0, back);
  EXPECT_EQ(back[6], 1.f);
  EXPECT_EQ(back[7], -4.f);
}

TEST(QuantBlocks, Q4HandWorkedLayout) {
  // The value of largest magnitude is -8, so d = -8 / -8 = 1 and the integers -8..7 are exact; byte j
  // holds element j + 8 (low nibble) and element j + 16 + 8 (high nibble).
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j % 16 - 8);
  uint8_t block[18];
  quantize_row(x.data(), 32, QuantType::Q4_0, block);
  EXPECT_EQ(block[0] | (block[1] << 8), 0x3c00);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(block[2 + j], uint8_t(j | (j << 4))) << j;
  float back[32];
  dequantize_row(block, 32, QuantType::Q4_0, back);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(back[j], x[size_t(j)]) << j;
}

TEST(QuantBlocks, Q4PositiveExtremeClampsAtSeven) {
  // x_m = 8 > 0: d = -1, so 8 maps to q = -8 (exact) and -8 would need q = 8, clamped to 7 (value -7).
  std::vector<float> x(32, 0.f);
  x[0] = 8.f;
  x[1] = -8.f;
  uint8_t block[18];
  quantize_row(x.data(), 32, QuantType::Q4_0, block);
  float back[32];
  dequantize_row(block, 32, QuantType::Q4_0, back);
  EXPECT_EQ(scale_of_block(block), -1.f);
  EXPECT_EQ(back[0], 8.f);
  EXPECT_EQ(back[1], -7.f);
  EXPECT_EQ(back[2], 0.f);
}

TEST(QuantBlocks, RoundTripErrorWithinHalfAStep) {
  const std::vector<float> x = random_values(32 * 64, 7, 0.05f);
  for (QuantType t : {QuantType::Q8_0, QuantType::Q4_0}) {
    std::vector<uint8_t> blocks(64 * quant_block_bytes(t));
    std::vector<float> back(x.size());
    quantize_row(x.data(), int64_t(x.size()), t, blocks.data());
    dequantize_row(blocks.data(), int64_t(x.size()), t, back.data());
    for (size_t b = 0; b < 64; ++b) {
      const float d = std::fabs(scale_of_block(blocks.data() + b * quant_block_bytes(t)));
      // Half a step, plus the float16 rounding of d times |q| <= 128; Q4_0 clamps one end to a full step.
      const float bound = (t == QuantType::Q8_0 ? 0.5f : 1.0f) * d + 128.f * d * 0x1p-11f;
      for (size_t j = 0; j < 32; ++j)
        ASSERT_LE(std::fabs(back[b * 32 + j] - x[b * 32 + j]), bound) << quant_type_name(t) << " " << b << " " << j;
    }
  }
}

TEST(QuantBlocks, ZeroBlockAndBadValues) {
  std::vector<float> x(32, 0.f);
  uint8_t block[34];
  quantize_row(x.data(), 32, QuantType::Q8_0, block);
  float back[32];
  dequantize_row(block, 32, QuantType::Q8_0, back);
  for (float v : back) EXPECT_EQ(v, 0.f);
  x[3] = NAN;
  EXPECT_NE(error_of([&] { quantize_row(x.data(), 32, QuantType::Q8_0, block); }).find("not a finite"), std::string::npos);
  x[3] = 1e9f;  // d = 1e9 / 127 overflows a float16 scale
  EXPECT_NE(error_of([&] { quantize_row(x.data(), 32, QuantType::Q8_0, block); }).find("float16"), std::string::npos);
  EXPECT_NE(error_of([] { parse_quant_type("q5_k"); }).find("q8_0 or q4_0"), std::string::npos);
  EXPECT_EQ(parse_quant_type("q4_0"), QuantType::Q4_0);
}

// ---------------------------------------------------------------------------------------------------
// Matrix products at every level.

struct QuantizedMatrix {
  std::vector<uint8_t> blocks;
  QuantMatrix view;
};

// Random weights quantized as `t`; with power_of_two_scales every block's scale is replaced by a power of
// two, which makes every weight d · q exact in bfloat16 (|q| <= 127 needs 7 significant bits).
QuantizedMatrix random_quantized(int64_t rows, int64_t cols, QuantType t, uint32_t seed, bool power_of_two_scales) {
  QuantizedMatrix m;
  const std::vector<float> w = random_values(size_t(rows * cols), seed, 0.1f);
  const size_t row_bytes = size_t(cols / 32) * quant_block_bytes(t);
  m.blocks.resize(size_t(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) quantize_row(w.data() + r * cols, cols, t, m.blocks.data() + size_t(r) * row_bytes);
  if (power_of_two_scales) {
    std::mt19937 rng(seed + 1);
    for (size_t at = 0; at < m.blocks.size(); at += quant_block_bytes(t)) {
      const uint16_t bits = f32_to_f16(std::ldexp(1.f, int(rng() % 12) - 14));
      std::memcpy(m.blocks.data() + at, &bits, 2);
    }
  }
  m.view = QuantMatrix{m.blocks.data(), t, rows, cols};
  return m;
}

using QuantMatmulParam = std::tuple<Isa, QuantType>;

class QuantMatmulAtLevel : public ::testing::TestWithParam<QuantMatmulParam> {
 protected:
  void SetUp() override {
    const Isa isa = std::get<0>(GetParam());
    if (!isa_supported(isa)) GTEST_SKIP() << "this CPU lacks the " << isa_name(isa) << " kernel level";
    set_active_isa(isa);
  }

  // quant_matmul against quant_matmul_reference: |difference| <= relative · Σ_k |x_k w_k| (+ a tiny floor).
  void compare(int64_t M, int64_t N, int64_t K, bool bf16_x, bool power_of_two_scales, bool bias) {
    const QuantType t = std::get<1>(GetParam());
    const QuantizedMatrix w = random_quantized(N, K, t, uint32_t(M * 131 + N * 7 + K), power_of_two_scales);
    std::vector<float> x = random_values(size_t(M * K), uint32_t(M + N + K));
    if (bf16_x)
      for (float& v : x) v = round_to_dtype(v, DType::BF16);
    const std::vector<float> b = random_values(size_t(N), 3);
    std::vector<float> got(size_t(M * N), NAN), want(size_t(M * N));
    quant_matmul(x.data(), M, w.view, bias ? b.data() : nullptr, got.data());
    quant_matmul_reference(x.data(), M, w.view, bias ? b.data() : nullptr, want.data());
    // The bf16 GEMM levels round each dequantized weight to bfloat16 (relative 2^-9) for prefill; exact
    // weights leave only the order of the float32 additions.
    const Isa isa = std::get<0>(GetParam());
    const bool weights_rounded = M > kRowIndependentRows && bf16_x && !power_of_two_scales && (isa == Isa::Avx512Bf16 || isa == Isa::Amx);
    const double relative = weights_rounded ? 0x1p-8 : 1e-5;
    // Decode on the avx2 level, and Q4_0 decode on the bf16 levels with VNNI, quantize x per 32-block to int8
    // (step max|x_b| / 127): each x value moves by at most half a step.
    const bool x_quantized = M <= kRowIndependentRows &&
                             (isa == Isa::Avx2 || (t == QuantType::Q4_0 && (isa == Isa::Avx512Bf16 || isa == Isa::Amx) &&
                                                   __builtin_cpu_supports("avx512vnni")));
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
      dequantize_row(w.view.row(n), K, t, row.data());
      for (int64_t m = 0; m < M; ++m) {
        double magnitude = 0, x_rounding = 0;
        for (int64_t k = 0; k < K; ++k) magnitude += std::fabs(double(x[size_t(m * K + k)]) * row[size_t(k)]);
        for (int64_t b = 0; x_quantized && b < K / 32; ++b) {
          double x_max = 0, w_sum = 0;
          for (int64_t j = b * 32; j < b * 32 + 32; ++j) {
            x_max = std::max(x_max, std::fabs(double(x[size_t(m * K + j)])));
            w_sum += std::fabs(double(row[size_t(j)]));
          }
          x_rounding += x_max / 127 / 2 * w_sum;
        }
        ASSERT_NEAR(got[size_t(m * N + n)], want[size_t(m * N + n)], relative * magnitude + x_rounding + 1e-6)
            << "M=" << M << " N=" << N << " K=" << K << " at " << m << "," << n;
      }
    }
  }

 private:
  test::RestoreActiveIsa restore_;
};

const int64_t kShapes[][3] = {{1, 1, 32},  {1, 37, 96},   {2, 13, 160}, {3, 129, 64}, {4, 7, 2080},
                              {5, 33, 96}, {16, 9, 2080}, {17, 9, 96}, {37, 70, 160}, {64, 19, 1056},
                              {400, 17, 32}};

TEST_P(QuantMatmulAtLevel, MatchesReferenceOnOddShapes) {
  for (const auto& s : kShapes) compare(s[0], s[1], s[2], false, false, true);
}

TEST_P(QuantMatmulAtLevel, Bf16ExactActivations) {
  for (const auto& s : kShapes) compare(s[0], s[1], s[2], true, false, false);
}

TEST_P(QuantMatmulAtLevel, Bf16ExactWeightsAreMultipliedExactly) {
  for (const auto& s : kShapes) compare(s[0], s[1], s[2], true, true, true);
}

// A NaN in x reaches every output it meets, also where a level quantizes x (the maximum instructions drop a
// NaN operand, so the quantizer has to carry it on its own).
TEST_P(QuantMatmulAtLevel, NanInXReachesTheOutputs) {
  const int64_t N = 5, K = 96;
  const QuantizedMatrix w = random_quantized(N, K, std::get<1>(GetParam()), 8, true);
  for (int64_t M : {int64_t{1}, int64_t{3}, int64_t{20}}) {
    std::vector<float> x = random_values(size_t(M * K), 9);
    x[size_t((M - 1) * K + 40)] = NAN;  // block 1 of the last row
    std::vector<float> y(size_t(M * N), 0.f);
    quant_matmul(x.data(), M, w.view, nullptr, y.data());
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_TRUE(std::isnan(y[size_t((M - 1) * N + n)])) << "M=" << M << " n=" << n;
      for (int64_t m = 0; m + 1 < M; ++m) EXPECT_FALSE(std::isnan(y[size_t(m * N + n)])) << "M=" << M << " m=" << m;
    }
  }
}

// Batched decode (up to kRowIndependentRows rows): each row bit for bit as that row's product alone.
TEST_P(QuantMatmulAtLevel, DecodeRowsDoNotDependOnTheBatch) {
  const int64_t N = 37, K = 1056;
  const QuantizedMatrix w = random_quantized(N, K, std::get<1>(GetParam()), 21, false);
  const std::vector<float> bias = random_values(size_t(N), 4);
  for (int64_t M = 1; M <= kRowIndependentRows; ++M)
    for (bool bf16_x : {false, true}) {
      std::vector<float> x = random_values(size_t(M * K), uint32_t(50 + M));
      if (bf16_x)
        for (float& v : x) v = round_to_dtype(v, DType::BF16);
      const std::string unlike = test::first_row_unlike_alone(x, M, K, N, [&](const float* rows, int64_t count, float* y) {
        quant_matmul(rows, count, w.view, bias.data(), y);
      });
      ASSERT_EQ(unlike, "") << "M=" << M << " bf16 x=" << bf16_x;
    }
}

// linear() on a quantized Weight: Rows::Shared is quant_matmul itself, Rows::Independent keeps every row as
// it is alone for any number of rows, linear_reference is quant_matmul_reference, and weight_row_f32 is
// dequantize_row.
TEST_P(QuantMatmulAtLevel, LinearOnQuantizedWeights) {
  const int64_t N = 19, K = 160;
  const QuantType t = std::get<1>(GetParam());
  const QuantizedMatrix w = random_quantized(N, K, t, 23, false);
  const Weight weight = w.view;
  const std::vector<float> bias = random_values(size_t(N), 5);
  for (int64_t M : {1, 4, 16, 17, 37, 300}) {
    const std::vector<float> x = random_values(size_t(M * K), uint32_t(70 + M));
    std::vector<float> got(size_t(M * N)), want(size_t(M * N));
    linear(x.data(), M, weight, bias.data(), got.data());
    quant_matmul(x.data(), M, w.view, bias.data(), want.data());
    ASSERT_EQ(got, want) << "M=" << M;
    linear_reference(x.data(), M, weight, bias.data(), got.data());
    quant_matmul_reference(x.data(), M, w.view, bias.data(), want.data());
    ASSERT_EQ(got, want) << "M=" << M;
    const std::string unlike = test::first_row_unlike_alone(x, M, K, N, [&](const float* rows, int64_t count, float* y) {
      linear(rows, count, weight, bias.data(), y, Rows::Independent);
    });
    ASSERT_EQ(unlike, "") << "M=" << M;
  }
  std::vector<float> row(static_cast<size_t>(K)), want(static_cast<size_t>(K));
  for (int64_t r = 0; r < N; ++r) {
    weight_row_f32(weight, r, row.data());
    dequantize_row(w.view.row(r), K, t, want.data());
    ASSERT_EQ(row, want) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, QuantMatmulAtLevel,
                         ::testing::Combine(::testing::ValuesIn(kAllIsas),
                                            ::testing::Values(QuantType::Q8_0, QuantType::Q4_0)),
                         [](const ::testing::TestParamInfo<QuantMatmulParam>& info) {
                           return std::string(isa_name(std::get<0>(info.param))) + "_" +
                                  quant_type_name(std::get<1>(info.param));
                         });

// ---------------------------------------------------------------------------------------------------
// GGUF.

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// A small file: metadata of each kind and an F32, a BF16 and a Q8_0 tensor.
void write_small_gguf(const fs::path& path, const std::vector<float>& f32, const std::vector<uint16_t>& bf16,
                      const std::vector<uint8_t>& q8) {
  GgufWriter w;
  w.add_string("paligemma.note", "hello");
  w.add_bytes("paligemma.blob", std::string("\x00\x01\x02", 3));
  w.add_u32("paligemma.answer", 42);
  w.add_tensor("a.f32", GgmlType::F32, {3}, [&](const GgufWriter::Sink& s) { s(f32.data(), 12); });
  w.add_tensor("b.bf16", GgmlType::BF16, {2, 5}, [&](const GgufWriter::Sink& s) {
    s(bf16.data(), 8);
    s(bf16.data() + 4, 12);  // in two pieces
  });
  w.add_tensor("c.q8", GgmlType::Q8_0, {2, 64}, [&](const GgufWriter::Sink& s) { s(q8.data(), q8.size()); });
  w.write(path.string());
}

struct SmallGguf {
  std::vector<float> f32{1.f, -2.f, 3.5f};
  std::vector<uint16_t> bf16{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<uint8_t> q8;
  SmallGguf() {
    q8.resize(4 * 34);
    for (size_t i = 0; i < q8.size(); ++i) q8[i] = uint8_t(i * 7);
  }
};

TEST(Gguf, RoundTrip) {
  TempDir tmp;
  const SmallGguf s;
  write_small_gguf(tmp / "m.gguf", s.f32, s.bf16, s.q8);
  EXPECT_FALSE(fs::exists(tmp / "m.gguf.part"));
  const GgufFile f((tmp / "m.gguf").string());
  EXPECT_EQ(f.string("paligemma.note"), "hello");
  EXPECT_EQ(f.bytes("paligemma.blob"), std::string("\x00\x01\x02", 3));
  EXPECT_EQ(f.unsigned_integer("paligemma.answer"), 42u);
  EXPECT_EQ(f.unsigned_integer("general.alignment"), 32u);
  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensor& a = f.tensors().at("a.f32");
  EXPECT_EQ(a.type, GgmlType::F32);
  EXPECT_EQ(a.shape, std::vector<int64_t>({3}));
  EXPECT_EQ(std::memcmp(a.data, s.f32.data(), 12), 0);
  const GgufTensor& b = f.tensors().at("b.bf16");
  EXPECT_EQ(b.shape, std::vector<int64_t>({2, 5}));
  EXPECT_EQ(std::memcmp(b.data, s.bf16.data(), 20), 0);
  const GgufTensor& c = f.tensors().at("c.q8");
  EXPECT_EQ(c.type, GgmlType::Q8_0);
  EXPECT_EQ(c.shape, std::vector<int64_t>({2, 64}));
  EXPECT_EQ(c.bytes, s.q8.size());
  EXPECT_EQ(std::memcmp(c.data, s.q8.data(), s.q8.size()), 0);
  for (const auto& [name, t] : f.tensors())  // aligned within the mapping (which is page-aligned)
    EXPECT_EQ((static_cast<const uint8_t*>(t.data) - f.mapped().data()) % 32, 0) << name;
  // GGUF lists dimensions innermost first: the Q8_0 tensor's 64 comes before its 2.
  const std::string bytes = read_bytes(tmp / "m.gguf");
  const std::string name = std::string("\x04\0\0\0\0\0\0\0c.q8", 12);
  const size_t at = bytes.find(name);
  ASSERT_NE(at, std::string::npos);
  uint32_t dims;
  uint64_t d0, d1;
  std::memcpy(&dims, bytes.data() + at + 12, 4);
  std::memcpy(&d0, bytes.data() + at + 16, 8);
  std::memcpy(&d1, bytes.data() + at + 24, 8);
  EXPECT_EQ(dims, 2u);
  EXPECT_EQ(d0, 64u);
  EXPECT_EQ(d1, 2u);
  EXPECT_NE(error_of([&] { f.string("paligemma.answer"); }).find("not a string"), std::string::npos);
  EXPECT_NE(error_of([&] { f.string("missing.key"); }).find("no metadata missing.key"), std::string::npos);
}

TEST(Gguf, EveryTruncationIsAnErrorNamingTheFile) {
  TempDir tmp;
  const SmallGguf s;
  write_small_gguf(tmp / "m.gguf", s.f32, s.bf16, s.q8);
  const std::string bytes = read_bytes(tmp / "m.gguf");
  size_t data_end = 0;  // the file may end in alignment padding, which a cut can remove harmlessly
  {
    const GgufFile f((tmp / "m.gguf").string());
    for (const auto& [name, t] : f.tensors())
      data_end = std::max(data_end, size_t(static_cast<const uint8_t*>(t.data) - f.mapped().data()) + t.bytes);
  }
  const fs::path cut = tmp / "cut.gguf";
  for (size_t n = 0; n < data_end; n += (n < 300 ? 1 : 13)) {
    write_bytes(cut, bytes.substr(0, n));
    const std::string e = error_of([&] { GgufFile f(cut.string()); });
    ASSERT_NE(e.find(cut.string()), std::string::npos) << "cut at " << n << ": \"" << e << "\"";
  }
}

TEST(Gguf, CorruptHeadersAreErrors) {
  TempDir tmp;
  const SmallGguf s;
  write_small_gguf(tmp / "m.gguf", s.f32, s.bf16, s.q8);
  const std::string good = read_bytes(tmp / "m.gguf");
  const fs::path bad = tmp / "bad.gguf";
  auto error_with = [&](std::string bytes) {
    write_bytes(bad, bytes);
    return error_of([&] { GgufFile f(bad.string()); });
  };
  std::string b = good;
  b[0] = 'X';
  EXPECT_NE(error_with(b).find("not a GGUF file"), std::string::npos);
  b = good;
  b[4] = 9;
  EXPECT_NE(error_with(b).find("version 9"), std::string::npos);
  // The Q8_0 tensor's type field follows its name, dimension count and two dimensions.
  const size_t type_at = good.find(std::string("\x04\0\0\0\0\0\0\0c.q8", 12)) + 12 + 4 + 16;
  b = good;
  b[type_at] = 99;
  EXPECT_NE(error_with(b).find("ggml type 99"), std::string::npos);
  b = good;
  b[type_at + 4 + 1] = 0x10;  // the data offset, now far beyond the end of the file
  EXPECT_NE(error_with(b).find("beyond the end"), std::string::npos);
  b = good;
  b[type_at - 16] = 48;  // rows of 48 values are not whole Q8_0 blocks
  EXPECT_NE(error_with(b).find("not a multiple"), std::string::npos);
  b = good;
  b[8] = 0x7f;  // an absurd tensor count
  EXPECT_NE(error_with(b).find("impossible"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------------
// Quantized fixture models.

struct Loaded {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<PaliGemmaModel> model;
};

Loaded load_model(const std::string& path, const TensorLookup* lookup = nullptr) {
  Loaded l;
  l.checkpoint = std::make_unique<Checkpoint>(path);
  l.model = std::make_unique<PaliGemmaModel>(l.checkpoint->config(),
                                             bind_weights(l.checkpoint->config(), lookup ? *lookup : l.checkpoint->lookup()));
  return l;
}

std::vector<float> fixture_pixels(const PaliGemmaConfig& c) {
  const ImageRGB8 image = decode_image_file((kFixtures / "images" / "png" / "rgb_300x201.png").string());
  return normalize_to_chw(resize_bicubic_pil(image, int(c.vision.image_size), int(c.vision.image_size)));
}

TEST(QuantizedModel, FileIsSelfContainedAndKeepsSmallTensors) {
  TempDir tmp;
  const std::string dir = (kFixtures / "models" / "pg2_bf16_sharded").string();
  const QuantizeSummary s = quantize_checkpoint(dir, QuantType::Q8_0, (tmp / "m.gguf").string());
  const Checkpoint original(dir), quantized((tmp / "m.gguf").string());
  EXPECT_EQ(s.file_bytes, fs::file_size(tmp / "m.gguf"));
  EXPECT_EQ(quantized.config().text.hidden, original.config().text.hidden);
  EXPECT_EQ(quantized.config().text.sliding_window, original.config().text.sliding_window);
  EXPECT_EQ(quantized.config().vision.image_size, original.config().vision.image_size);
  const Tokenizer a(original.tokenizer_path()), b(quantized.tokenizer_path());
  EXPECT_EQ(a.encode("caption en <loc0012> detect"), b.encode("caption en <loc0012> detect"));
  ASSERT_EQ(quantized.tensors().size(), original.tensors().size());
  int64_t quantized_count = 0;
  for (const auto& [name, t] : quantized.tensors()) {
    const StoredTensor& o = original.tensors().at(name);
    EXPECT_EQ(t.shape, o.shape) << name;
    EXPECT_EQ(bool(t.quant), quantizes_tensor(name, t.shape)) << name;
    if (t.quant) {
      ++quantized_count;
      EXPECT_EQ(*t.quant, QuantType::Q8_0);
    } else {  // norms, biases, position embedding, patch embedding: bit for bit
      EXPECT_EQ(t.dtype, o.dtype) << name;
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      EXPECT_EQ(std::memcmp(t.data, o.data, size_t(n) * dtype_size(t.dtype)), 0) << name;
    }
  }
  EXPECT_EQ(quantized_count, s.quantized_tensors);
  // Every linear weight of the fixture has rows of whole blocks (64, 96), including the embeddings.
  EXPECT_TRUE(quantized.tensors().at("language_model.model.embed_tokens.weight").quant);
  EXPECT_FALSE(quantized.tensors().at("vision_tower.vision_model.embeddings.position_embedding.weight").quant);
  EXPECT_NE(error_of([&] { quantize_checkpoint((tmp / "m.gguf").string(), QuantType::Q4_0, (tmp / "n.gguf").string()); })
                .find("not one"),
            std::string::npos);
}

// A model directory whose config.json sizes do not match its weights (a crafted intermediate size near
// 2^30) is refused with the tensor named, before anything is sized by the claim or written.
TEST(QuantizedModel, RefusesAConfigThatDoesNotMatchTheWeights) {
  TempDir tmp;
  const fs::path dir = tmp / "model";
  fs::copy(kFixtures / "models" / "pg1_f32_tiny", dir);
  std::ifstream in(dir / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  in.close();
  config["text_config"]["intermediate_size"] = int64_t{1} << 30;
  std::ofstream(dir / "config.json") << config.dump();
  const std::string e =
      error_of([&] { quantize_checkpoint(dir.string(), QuantType::Q8_0, (tmp / "m.gguf").string()); });
  EXPECT_NE(e.find("mlp.gate_proj.weight has shape [32, 16], expected [1073741824, 16]"), std::string::npos)
      << e;
  EXPECT_FALSE(fs::exists(tmp / "m.gguf"));
}

// The engine on a quantized file computes the same function as on its dequantized weights: the model
// bound to float32 copies of every quantized matrix gives the same logits (f32 checkpoints, where the
// dequantized products are exact) at every step.
class QuantizedModelMatchesDequantized : public ::testing::TestWithParam<std::tuple<std::string, QuantType>> {};

TEST_P(QuantizedModelMatchesDequantized, Logits) {
  const auto& [model_name, type] = GetParam();
  // The best level whose decode keeps x exact (avx2 quantizes x, and the bf16 levels do for Q4_0 with VNNI).
  const test::RestoreActiveIsa restore;
  const Isa saved = active_isa();
  for (Isa isa : {Isa::Avx512, Isa::Scalar})
    if (isa_supported(isa) && isa <= saved) {
      set_active_isa(isa);
      break;
    }
  TempDir tmp;
  const std::string file = (tmp / "m.gguf").string();
  quantize_checkpoint((kFixtures / "models" / model_name).string(), type, file);
  const Loaded quantized = load_model(file);
  std::map<std::string, StoredTensor> dequantized;
  std::vector<std::vector<float>> storage;
  for (const auto& [name, t] : quantized.checkpoint->tensors()) {
    StoredTensor d = t;
    if (t.quant) {
      storage.emplace_back(size_t(t.shape[0] * t.shape[1]));
      const QuantMatrix q{t.data, *t.quant, t.shape[0], t.shape[1]};
      for (int64_t r = 0; r < q.rows; ++r) dequantize_row(q.row(r), q.cols, q.type, storage.back().data() + r * q.cols);
      d = StoredTensor{DType::F32, t.shape, storage.back().data()};
    }
    dequantized.emplace(name, d);
  }
  const TensorLookup lookup = [&](const std::string& name) -> const StoredTensor* {
    auto it = dequantized.find(name);
    return it == dequantized.end() ? nullptr : &it->second;
  };
  const Loaded plain = load_model(file, &lookup);
  const PaliGemmaConfig& c = quantized.model->config();
  const Tokenizer tokenizer(quantized.checkpoint->tokenizer_path());
  const std::vector<int32_t> ids = build_prompt_ids(tokenizer, int32_t(c.image_token_id), c.vision.tokens(), "caption en");
  const Agreement a = teacher_forced_agreement(*plain.model, *quantized.model, fixture_pixels(c), ids, 6);
  EXPECT_EQ(a.top1(), 1.0);
  EXPECT_LT(a.max_kl(), 1e-7);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizedModelMatchesDequantized,
                         ::testing::Combine(::testing::Values("pg1_f32", "pg2_f32"),
                                            ::testing::Values(QuantType::Q8_0, QuantType::Q4_0)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + quant_type_name(std::get<1>(info.param));
                         });

// Agreement with the original on the half-precision fixtures (the dtypes real checkpoints ship in), two
// images x two prompts x 16 teacher-forced steps (docs/quantization.md has the figures). Q8_0's weight
// error (at most half a step of max|w| / 127 per block) is of the size of bf16's own rounding, so its
// next-token distributions must stay within 1e-3 nats (measured: 1.1e-4 and 1.4e-4), and its argmax may
// differ only where the original's top two logits are within two bf16 spacings (0.031 at the fixtures'
// logit sizes of 4-8; a difference of 0.05 or more must be kept). The avx2 level also rounds x to int8 per
// 32-block, an error bounded like the weights' (half a step of max|x| / 127), so there the two bounds add
// up: a margin of 0.1 or more must be kept (measured on avx2: mean KL 2.9e-4 and 1.9e-4, one flip at a
// margin of 0.077). Q4_0's step is 16 times coarser: mean KL
// below 0.1 and top-1 at least 50 % (measured 0.023-0.055 and 61-88 %); a kernel or layout error gives
// unrelated distributions (KL of several nats).
class QuantizedAgreement : public ::testing::TestWithParam<std::tuple<std::string, QuantType>> {};

TEST_P(QuantizedAgreement, AgainstOriginal) {
  const auto& [model_name, type] = GetParam();
  TempDir tmp;
  const std::string dir = (kFixtures / "models" / model_name).string(), file = (tmp / "m.gguf").string();
  quantize_checkpoint(dir, type, file);
  const Loaded original = load_model(dir), quantized = load_model(file);
  const PaliGemmaConfig& c = original.model->config();
  const Tokenizer tokenizer(original.checkpoint->tokenizer_path());
  Agreement all;
  for (const char* image : {"png/rgb_300x201.png", "jpeg/cmyk_75x47.jpg"}) {
    const ImageRGB8 rgb = decode_image_file((kFixtures / "images" / image).string());
    const std::vector<float> pixels =
        normalize_to_chw(resize_bicubic_pil(rgb, int(c.vision.image_size), int(c.vision.image_size)));
    for (const char* prompt : {"caption en", "detect cat"}) {
      const std::vector<int32_t> ids = build_prompt_ids(tokenizer, int32_t(c.image_token_id), c.vision.tokens(), prompt);
      const Agreement a = teacher_forced_agreement(*original.model, *quantized.model, pixels, ids, 16);
      all.steps.insert(all.steps.end(), a.steps.begin(), a.steps.end());
    }
  }
  if (type == QuantType::Q8_0) {
    EXPECT_LT(all.mean_kl(), 1e-3);
    const double kept_margin = active_isa() == Isa::Avx2 ? 0.1 : 0.05;
    for (const AgreementStep& s : all.steps) {
      if (s.candidate_token != s.reference_token) {
        EXPECT_LT(s.reference_margin, kept_margin) << "kl " << s.kl;
      }
    }
  } else {
    EXPECT_LT(all.mean_kl(), 0.1);
    EXPECT_GE(all.top1(), 0.5);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, QuantizedAgreement,
                         ::testing::Combine(::testing::Values("pg1_f16_sharded", "pg2_bf16_sharded"),
                                            ::testing::Values(QuantType::Q8_0, QuantType::Q4_0)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + quant_type_name(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace pg
