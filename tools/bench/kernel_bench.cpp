// pg_kernel_bench: speed of the dispatched kernels on PaliGemma's real shapes, per instruction-set
// level, as medians of several runs. Not a test; run it on a quiet machine.
//   pg_kernel_bench [--runs N] [--levels scalar,avx2,...] [--only TEXT] [--cpu-time] [--weight-offset BYTES]
// --only: the cases whose name contains TEXT. --cpu-time: time by the process's CPU time instead of the
// wall clock, which keeps single-thread (OMP_NUM_THREADS=1) figures comparable on a busy machine.
// --weight-offset: start every weight matrix BYTES (a multiple of 4) past a 64-byte boundary (default 0: aligned), as
// the tensors of a memory-mapped safetensors file sit off 64-byte boundaries (the header's length decides their
// alignment).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <omp.h>
#include <time.h>

#include "kernels/attention.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "paligemma/error.h"

namespace {

using pg::DType;

// More than any last-level cache this runs on.
constexpr double kColdBytes = 512e6;

bool use_cpu_time = false;

double now_seconds() {
  if (use_cpu_time) {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median_seconds(int runs, const std::function<void()>& f) {
  f();  // warm-up: page in the weights, start the threads
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const double t0 = now_seconds();
    f();
    t.push_back(now_seconds() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_floats(size_t n, uint32_t seed, bool bf16_exact) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_exact ? pg::bf16_to_f32(pg::f32_to_bf16(d(rng))) : d(rng);
  return v;
}

struct Weights {
  std::vector<uint16_t> half;
  std::vector<float> full;
  pg::MatrixView view;
};

// Elements of size `element` to skip from `storage` so that the matrix starts offset_bytes past a 64-byte boundary
// (glibc starts large blocks 16 bytes past one; vectors are over-allocated by 64 bytes for this).
size_t skip_to_offset(const void* storage, size_t element, size_t offset_bytes) {
  const size_t to_boundary = (64 - reinterpret_cast<uintptr_t>(storage) % 64) % 64;
  return (to_boundary + offset_bytes) / element;
}

Weights make_weights(int64_t rows, int64_t cols, DType t, size_t offset_bytes) {
  Weights w;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(-1000, 1000);
  const size_t n = size_t(rows * cols);
  if (t == DType::F32) {
    w.full.resize(n + (64 + offset_bytes) / sizeof(float));
    const size_t skip = skip_to_offset(w.full.data(), sizeof(float), offset_bytes);
    for (float& x : w.full) x = float(d(rng)) * 1e-3f;
    w.view = {w.full.data() + skip, t, rows, cols};
  } else {
    w.half.resize(n + (64 + offset_bytes) / sizeof(uint16_t));
    const size_t skip = skip_to_offset(w.half.data(), sizeof(uint16_t), offset_bytes);
    for (uint16_t& x : w.half) {
      const float f = float(d(rng)) * 1e-3f;
      x = t == DType::BF16 ? pg::f32_to_bf16(f) : pg::f32_to_f16(f);
    }
    w.view = {w.half.data() + skip, t, rows, cols};
  }
  return w;
}

struct MatmulCase {
  const char* name;
  int64_t M, N, K;
  DType w;
  bool x_bf16_exact;
};

}  // namespace

int run(int argc, char** argv) {
  int runs = 7;
  std::string only;
  size_t weight_offset = 0;
  std::vector<pg::Isa> levels;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--cpu-time") {
      use_cpu_time = true;
    } else if (a == "--weight-offset" && i + 1 < argc) {
      weight_offset = size_t(std::max(0, std::atoi(argv[++i]))) / 4 * 4;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--levels" && i + 1 < argc) {
      std::string list = argv[++i];
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = list.find(',', start);
        const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        levels.push_back(pg::parse_isa(name));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: pg_kernel_bench [--runs N] [--levels scalar,avx2,avx512,avx512bf16,amx] [--only TEXT] [--cpu-time] [--weight-offset BYTES]\n");
      return 2;
    }
  }
  if (levels.empty())
    for (pg::Isa isa : pg::kAllIsas)
      if (pg::isa_supported(isa)) levels.push_back(isa);
  for (pg::Isa isa : levels) pg::set_active_isa(isa);  // refuses a level this CPU lacks before any work

  std::printf("threads %d, runs %d (median of %s)\n", omp_get_max_threads(), runs,
              use_cpu_time ? "process CPU time" : "wall-clock time");
  const MatmulCase cases[] = {
      // Decode: every product of a Gemma 2B layer (one KV head of 256) and the tied output projection.
      {"decode q/o", 1, 2048, 2048, DType::BF16, true},
      {"decode k/v", 1, 256, 2048, DType::BF16, true},
      {"decode mlp (gate/up)", 1, 16384, 2048, DType::BF16, true},
      {"decode mlp down", 1, 2048, 16384, DType::BF16, true},
      {"decode logits", 1, 257216, 2048, DType::BF16, true},
      // Batched decoding (the server's forward_batch): one row per concurrent request.
      {"batch2 mlp (gate/up)", 2, 16384, 2048, DType::BF16, true},
      {"batch4 mlp (gate/up)", 4, 16384, 2048, DType::BF16, true},
      {"batch5 mlp (gate/up)", 5, 16384, 2048, DType::BF16, true},
      {"batch8 mlp (gate/up)", 8, 16384, 2048, DType::BF16, true},
      {"batch16 mlp (gate/up)", 16, 16384, 2048, DType::BF16, true},
      {"batch8 logits", 8, 257216, 2048, DType::BF16, true},
      {"prefill gate/up", 260, 16384, 2048, DType::BF16, true},
      {"prefill down", 260, 2048, 16384, DType::BF16, true},
      {"vision fc1", 256, 4304, 1152, DType::BF16, true},
      {"prefill gate/up, f32 x", 260, 16384, 2048, DType::BF16, false},
      {"decode q/o f32", 1, 2048, 2048, DType::F32, false},
      {"decode k/v f32", 1, 256, 2048, DType::F32, false},
      {"decode mlp f32", 1, 16384, 2048, DType::F32, false},
      {"decode mlp down f32", 1, 2048, 16384, DType::F32, false},
      {"prefill gate/up f32", 260, 16384, 2048, DType::F32, false},
      {"prefill down f32", 260, 2048, 16384, DType::F32, false},
      {"vision fc1 f32", 256, 4304, 1152, DType::F32, false},
  };
  std::printf("%-11s %-26s %-22s %10s %9s %8s\n", "level", "matmul", "M x N x K", "ms", "GFLOP/s", "GB/s");
  auto selected = [&](const char* name) { return std::string(name).find(only) != std::string::npos; };
  for (const MatmulCase& c : cases) {
    if (!selected(c.name)) continue;
    // Like the model, which uses each weight matrix once per pass, every run takes the next of enough
    // copies that together exceed the last-level cache: the weights come from memory.
    const double matrix_bytes = double(c.N) * double(c.K) * double(pg::dtype_size(c.w));
    const int copies = int(std::max(1.0, std::ceil(kColdBytes / matrix_bytes)));
    std::vector<Weights> w;
    for (int i = 0; i < copies; ++i) w.push_back(make_weights(c.N, c.K, c.w, weight_offset));
    const std::vector<float> x = random_floats(size_t(c.M * c.K), 7, c.x_bf16_exact);
    std::vector<float> y(size_t(c.M * c.N));
    for (pg::Isa isa : levels) {
      // The scalar level is ~100x slower on the big products: one run is plenty.
      const bool slow = isa == pg::Isa::Scalar && c.M > 1;
      pg::set_active_isa(isa);
      size_t next = 0;
      const double s = median_seconds(slow ? 1 : runs, [&] {
        pg::matmul(x.data(), c.M, w[next++ % w.size()].view, nullptr, y.data());
      });
      const double flops = 2.0 * double(c.M) * double(c.N) * double(c.K);
      char shape[64];
      std::snprintf(shape, sizeof shape, "%lld x %lld x %lld %s", (long long)c.M, (long long)c.N, (long long)c.K,
                    pg::dtype_name(c.w));
      std::printf("%-11s %-26s %-22s %10.3f %9.1f %8.1f\n", pg::isa_name(isa), c.name, shape, s * 1e3,
                  flops / s * 1e-9, matrix_bytes / s * 1e-9);
      std::fflush(stdout);
    }
  }

  struct AttentionCase {
    const char* name;
    int64_t T, n_keys, n_heads, n_kv_heads, head_dim;
    DType act;
  };
  // Decode at the prompt lengths of 224, 448 and 896 px (256, 1024, 4096 image tokens + 7).
  const AttentionCase attention_cases[] = {
      {"text prefill (263)", 263, 263, 8, 1, 256, DType::BF16},
      {"vision (256)", 256, 256, 16, 16, 72, DType::BF16},
      {"text decode (1 of 264)", 1, 264, 8, 1, 256, DType::BF16},
      {"text decode (1 of 1032)", 1, 1032, 8, 1, 256, DType::BF16},
      {"text decode (1 of 4104)", 1, 4104, 8, 1, 256, DType::BF16},
  };
  std::printf("\n%-11s %-26s %10s %9s\n", "level", "attention (per layer)", "ms", "GFLOP/s");
  for (const AttentionCase& c : attention_cases) {
    if (!selected(c.name)) continue;
    const int64_t n_keys = c.n_keys;
    pg::AttentionShape s;
    s.n_heads = c.n_heads;
    s.n_kv_heads = c.n_kv_heads;
    s.head_dim = c.head_dim;
    s.scale = 1.f / std::sqrt(float(c.head_dim));
    s.prefix_len = c.T == 1 ? c.n_keys - 1 : c.T;
    s.act = c.act;
    const auto q = random_floats(size_t(c.T * c.n_heads * c.head_dim), 1, true);
    const auto k = random_floats(size_t(n_keys * c.n_kv_heads * c.head_dim), 2, true);
    const auto v = random_floats(size_t(n_keys * c.n_kv_heads * c.head_dim), 3, true);
    std::vector<float> out(q.size());
    for (pg::Isa isa : levels) {
      pg::set_active_isa(isa);
      const double sec = median_seconds(runs, [&] {
        pg::attention(q.data(), c.T, n_keys - c.T, k.data(), v.data(), n_keys, s, out.data());
      });
      const double flops = 4.0 * double(c.T) * double(n_keys) * double(c.n_heads * c.head_dim);
      std::printf("%-11s %-26s %10.3f %9.1f\n", pg::isa_name(isa), c.name, sec * 1e3, flops / sec * 1e-9);
      std::fflush(stdout);
    }
  }

  std::printf("\n%-11s %-26s %10s %8s\n", "level", "element-wise (263 x 16384)", "ms", "GB/s");
  const int64_t n = 263 * 16384;
  auto a = random_floats(size_t(n), 4, false);
  const auto b = random_floats(size_t(n), 5, false);
  const std::vector<float> a0 = a;
  const std::vector<float> norm_w = random_floats(2048, 6, false);
  std::vector<float> normed(size_t(263 * 2048));
  for (pg::Isa isa : levels) {
    pg::set_active_isa(isa);
    auto report = [&](const char* name, double bytes, const std::function<void()>& f) {
      if (!selected(name)) return;
      const double sec = median_seconds(runs, f);
      std::printf("%-11s %-26s %10.3f %8.1f\n", pg::isa_name(isa), name, sec * 1e3, bytes / sec * 1e-9);
    };
    report("round_inplace bf16", 8.0 * n, [&] {
      std::memcpy(a.data(), a0.data(), a.size() * 4);
      pg::round_inplace(a.data(), a.size(), DType::BF16);
    });
    report("gelu_tanh_mul bf16", 12.0 * n, [&] {
      std::memcpy(a.data(), a0.data(), a.size() * 4);
      pg::gelu_tanh_mul(a.data(), b.data(), n, DType::BF16);
    });
    report("rms_norm 263 x 2048", 8.0 * 263 * 2048, [&] {
      pg::rms_norm(a0.data(), 263, 2048, norm_w.data(), 1.f, 1e-6f, normed.data());
    });
    report("layer_norm 256 x 1152", 8.0 * 256 * 1152, [&] {
      pg::layer_norm(a0.data(), 256, 1152, norm_w.data(), norm_w.data(), 1e-6f, normed.data());
    });
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const pg::Error& e) {
    std::fprintf(stderr, "pg_kernel_bench: %s\n", e.what());
    return 2;
  }
}
