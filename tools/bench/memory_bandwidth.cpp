// pg_memory_bandwidth: how fast this machine reads memory, the bound of single-token decoding (every weight
// is read once per token). All threads sum a buffer much larger than any cache, sequentially, each its own
// contiguous part; the figure is the median of several passes. Not a test.
//   pg_memory_bandwidth [--mb 2048] [--passes 9] [--threads N] [--json]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int usage(const char* message) {
  std::fprintf(stderr, "pg_memory_bandwidth: %s\nusage: pg_memory_bandwidth [--mb 2048] [--passes 9] [--threads N] [--json]\n",
               message);
  return 2;
}

// One pass: every thread sums its part with four independent accumulators (so the adds never wait on each
// other and only the loads set the pace).
uint64_t read_pass(const std::vector<uint64_t>& buffer) {
  uint64_t total = 0;
  const int64_t n = int64_t(buffer.size());
#pragma omp parallel reduction(+ : total)
  {
    const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = n * t / threads / 4 * 4, end = t + 1 == threads ? n : n * (t + 1) / threads / 4 * 4;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (int64_t i = begin; i < end; i += 4) {
      a += buffer[size_t(i)];
      b += buffer[size_t(i + 1)];
      c += buffer[size_t(i + 2)];
      d += buffer[size_t(i + 3)];
    }
    total += a + b + c + d;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t megabytes = 2048, passes = 9;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) return usage(("missing value after " + flag).c_str());
    const long long value = std::atoll(argv[++i]);
    if (value <= 0) return usage((flag + " needs a positive number").c_str());
    if (flag == "--mb") megabytes = value;
    else if (flag == "--passes") passes = value;
    else if (flag == "--threads") omp_set_num_threads(int(value));
    else return usage(("unknown flag " + flag).c_str());
  }
  // A multiple of 4 words per thread; first touched by the threads that read it (their NUMA node).
  const size_t words = size_t(megabytes) * (1 << 20) / sizeof(uint64_t) / 64 * 64;
  std::vector<uint64_t> buffer(words);
#pragma omp parallel for
  for (int64_t i = 0; i < int64_t(words); ++i) buffer[size_t(i)] = uint64_t(i) * 2654435761u;
  const uint64_t expected = read_pass(buffer);  // also the warm-up
  std::vector<double> gb_per_s;
  for (int64_t p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t sum = read_pass(buffer);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (sum != expected) {
      std::fprintf(stderr, "pg_memory_bandwidth: the sum changed between passes (memory error?)\n");
      return 1;
    }
    gb_per_s.push_back(double(words * sizeof(uint64_t)) / s / 1e9);
  }
  std::vector<double> sorted = gb_per_s;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  if (json) {
    std::printf("{\"read_gb_per_s\": %.3f, \"threads\": %d, \"buffer_mb\": %lld, \"passes\": [", median,
                omp_get_max_threads(), (long long)megabytes);
    for (size_t i = 0; i < gb_per_s.size(); ++i) std::printf("%s%.3f", i ? ", " : "", gb_per_s[i]);
    std::printf("]}\n");
  } else {
    std::printf("memory read bandwidth: %.2f GB/s (median of %lld passes over %lld MB, %d threads)\n", median,
                (long long)passes, (long long)megabytes, omp_get_max_threads());
  }
  return 0;
}
