#include "generate/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace pg {

int32_t argmax(const std::vector<float>& logits) {
  return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<float> log_softmax(const std::vector<float>& logits) {
  const float peak = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(double(x) - peak);
  const float log_sum = float(std::log(sum));
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = (logits[i] - peak) - log_sum;
  return out;
}

std::vector<double> filtered_distribution(const std::vector<float>& logits, const SamplingOptions& options) {
  const size_t n = logits.size();
  std::vector<double> scaled(n);
  for (size_t i = 0; i < n; ++i) scaled[i] = double(logits[i]) / options.temperature;
  std::vector<bool> kept(n, true);

  if (options.top_k > 0 && size_t(options.top_k) < n) {
    std::vector<double> sorted = scaled;
    std::nth_element(sorted.begin(), sorted.begin() + (options.top_k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[size_t(options.top_k - 1)];
    for (size_t i = 0; i < n; ++i) kept[i] = scaled[i] >= kth;
  }

  // Softmax over what is kept so far (top-p sees the top-k-filtered distribution, as the warpers chain).
  double peak = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i)
    if (kept[i]) peak = std::max(peak, scaled[i]);
  std::vector<double> p(n, 0.0);
  double total = 0;
  for (size_t i = 0; i < n; ++i)
    if (kept[i]) total += p[i] = std::exp(scaled[i] - peak);
  for (double& v : p) v /= total;

  if (options.top_p < 1.0) {
    // Ascending by probability (ties: higher id first, so that the lower id counts as more probable);
    // drop the prefix whose cumulative mass is <= 1 - top_p, never the most probable token.
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] != p[b] ? p[a] < p[b] : a > b; });
    double cumulative = 0;
    for (size_t r = 0; r + 1 < n; ++r) {
      cumulative += p[order[r]];
      if (cumulative > 1.0 - options.top_p) break;
      p[order[r]] = 0;
    }
    const double left = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& v : p) v /= left;
  }
  return p;
}

int32_t draw_token(const std::vector<double>& probabilities, std::mt19937_64& rng) {
  const double u = double(rng() >> 11) * 0x1.0p-53;
  double cumulative = 0;
  int32_t last_possible = 0;
  for (size_t i = 0; i < probabilities.size(); ++i) {
    if (probabilities[i] <= 0) continue;
    cumulative += probabilities[i];
    last_possible = int32_t(i);
    if (u < cumulative) return last_possible;
  }
  return last_possible;  // u beyond a total that rounding left just under 1
}

}  // namespace pg
