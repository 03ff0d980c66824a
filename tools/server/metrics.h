// The counters of `paligemma serve` behind GET /metrics, and their rendering in Prometheus' text exposition
// format (version 0.0.4). Every method is thread-safe: cpp-httplib runs handlers on many threads and the
// batch's callbacks run on its worker.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pg::server {

// Latency buckets in seconds, for an engine on CPUs: tens of milliseconds (a token from a small model) to
// two minutes (a long generation from a large one).
extern const std::vector<double> kLatencyBuckets;

// A Prometheus histogram: observations counted in buckets by upper bound, their sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds = kLatencyBuckets);  // ascending, finite
  void observe(double value);
  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative;  // per bound: observations <= it
    uint64_t count = 0;                // all observations: the +Inf bucket
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> upper_bounds_;
  std::vector<uint64_t> in_bucket_;  // per bound: observations above the previous bound, up to this one
  uint64_t count_ = 0;
  double sum_ = 0;
};

// What a scrape reads from the batch and the engine at that moment.
struct EngineReading {
  size_t queued = 0, running = 0;
  uint64_t finished = 0, cancelled = 0;
  double prefill_s = 0, decode_s = 0;
  uint64_t decode_tokens = 0;
  uint64_t image_cache_hits = 0, image_cache_misses = 0;
};

// The model, as paligemma_model_info's labels.
struct ModelLabels {
  std::string name, architecture, dtype;
  int64_t resolution = 0;
};

class Metrics {
 public:
  explicit Metrics(ModelLabels model);

  // The endpoint label of a request path: one of the server's routes, or "other" (unknown paths would
  // otherwise make a label value per path a client invents).
  static std::string endpoint(const std::string& path);

  void count_request(const std::string& path, int status);
  void observe_request_duration(const std::string& path, double seconds);
  void observe_time_to_first_token(double seconds);
  void add_prompt_tokens(uint64_t n);
  void add_generated_tokens(uint64_t n);

  // The whole exposition: the server's counters and histograms with the engine's reading.
  std::string render(const EngineReading& engine) const;

 private:
  const ModelLabels model_;
  mutable std::mutex mutex_;  // requests_, durations_, the token counts
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (endpoint, status) → count
  std::map<std::string, Histogram> durations_;                 // endpoint → request durations
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0;
  Histogram time_to_first_token_;
};

// A label value as the text format writes it between quotes: backslash, double quote and line feed escaped.
std::string escape_label_value(const std::string& value);
// A sample value: the shortest decimal that reads back as `value`; +Inf, -Inf, NaN as the format spells them.
std::string format_value(double value);

}  // namespace pg::server
