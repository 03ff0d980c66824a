#include "metrics.h"

#include <charconv>
#include <cmath>

namespace pg::server {

const std::vector<double> kLatencyBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), in_bucket_(upper_bounds_.size(), 0) {}

void Histogram::observe(double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < upper_bounds_.size(); ++i)
    if (value <= upper_bounds_[i]) {
      ++in_bucket_[i];
      break;
    }
  ++count_;
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Snapshot s{upper_bounds_, {}, count_, sum_};
  uint64_t below = 0;
  for (uint64_t n : in_bucket_) s.cumulative.push_back(below += n);
  return s;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::string(text, end);
}

namespace {

// HELP text escapes backslash and line feed only.
std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string label_set(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i)
    out += (i ? "," : "") + labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
  return out + "}";
}

struct Exposition {
  std::string text;

  void family(const std::string& name, const std::string& type, const std::string& help) {
    text += "# HELP " + name + " " + escape_help(help) + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const Labels& labels, const std::string& value) {
    text += name + label_set(labels) + " " + value + "\n";
  }
  void sample(const std::string& name, const Labels& labels, uint64_t value) {
    sample(name, labels, std::to_string(value));
  }
  void sample(const std::string& name, const Labels& labels, double value) {
    sample(name, labels, format_value(value));
  }
  void histogram(const std::string& name, Labels labels, const Histogram::Snapshot& s) {
    labels.emplace_back("le", "");
    for (size_t i = 0; i < s.upper_bounds.size(); ++i) {
      labels.back().second = format_value(s.upper_bounds[i]);
      sample(name + "_bucket", labels, s.cumulative[i]);
    }
    labels.back().second = "+Inf";
    sample(name + "_bucket", labels, s.count);
    labels.pop_back();
    sample(name + "_sum", labels, s.sum);
    sample(name + "_count", labels, s.count);
  }
  // A metric of one unlabelled sample: its HELP, TYPE and value.
  template <typename Value>
  void scalar(const std::string& name, const std::string& type, const std::string& help, Value value) {
    family(name, type, help);
    sample(name, {}, value);
  }
};

const char* const kRoutes[] = {"/", "/health", "/metrics", "/v1/models", "/v1/generate", "/v1/chat/completions"};

}  // namespace

Metrics::Metrics(ModelLabels model) : model_(std::move(model)) {
  // The generation endpoints' histograms exist from the start, so that a dashboard sees zeros, not nothing.
  for (const char* path : {"/v1/generate", "/v1/chat/completions"}) durations_.try_emplace(path);
}

std::string Metrics::endpoint(const std::string& path) {
  for (const char* route : kRoutes)
    if (path == route) return route;
  return "other";
}

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint(path), status}];
}

void Metrics::observe_request_duration(const std::string& path, double seconds) {
  Histogram* histogram;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    histogram = &durations_.try_emplace(endpoint(path)).first->second;  // std::map: the address stays
  }
  histogram->observe(seconds);
}

void Metrics::observe_time_to_first_token(double seconds) { time_to_first_token_.observe(seconds); }

void Metrics::add_prompt_tokens(uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += n;
}

void Metrics::add_generated_tokens(uint64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  generated_tokens_ += n;
}

std::string Metrics::render(const EngineReading& engine) const {
  std::map<std::pair<std::string, int>, uint64_t> requests;
  std::vector<std::pair<std::string, Histogram::Snapshot>> durations;
  uint64_t prompt_tokens, generated_tokens;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requests = requests_;
    for (const auto& [endpoint, histogram] : durations_) durations.emplace_back(endpoint, histogram.snapshot());
    prompt_tokens = prompt_tokens_;
    generated_tokens = generated_tokens_;
  }
  Exposition out;
  out.family("paligemma_requests_total", "counter",
             "HTTP requests answered, by endpoint (a route of the server, or \"other\") and status.");
  for (const auto& [key, count] : requests)
    out.sample("paligemma_requests_total", {{"endpoint", key.first}, {"status", std::to_string(key.second)}}, count);

  out.family("paligemma_request_duration_seconds", "histogram",
             "Generation requests from their headers read to their answer's last bytes ready to send.");
  for (const auto& [endpoint, snapshot] : durations)
    out.histogram("paligemma_request_duration_seconds", {{"endpoint", endpoint}}, snapshot);
  out.family("paligemma_time_to_first_token_seconds", "histogram",
             "Generations from being queued to their first token (queued, vision and prefill time).");
  out.histogram("paligemma_time_to_first_token_seconds", {}, time_to_first_token_.snapshot());

  out.scalar("paligemma_queue_depth", "gauge", "Generations waiting for a batch slot.", uint64_t(engine.queued));
  out.scalar("paligemma_running_sequences", "gauge", "Generations being decoded in the batch.",
             uint64_t(engine.running));
  out.scalar("paligemma_generations_total", "counter", "Generations ended, cancelled ones included.", engine.finished);
  out.scalar("paligemma_generations_cancelled_total", "counter", "Generations ended by their client going away.",
             engine.cancelled);

  out.scalar("paligemma_prompt_tokens_total", "counter",
             "Prompt tokens (image tokens, <bos>, prompt, separator) of the generations queued.", prompt_tokens);
  out.scalar("paligemma_generated_tokens_total", "counter", "Tokens generated, by every generation that ended.",
             generated_tokens);

  out.scalar("paligemma_decode_tokens_total", "counter", "Tokens made by the batch's shared decoding steps.",
             engine.decode_tokens);
  out.scalar("paligemma_decode_seconds_total", "counter", "Worker seconds in the batch's shared decoding steps.",
             engine.decode_s);
  out.scalar("paligemma_prefill_seconds_total", "counter",
             "Worker seconds admitting generations (vision, prefill; beam searches whole).", engine.prefill_s);
  out.scalar("paligemma_decode_tokens_per_second", "gauge",
             "Decoding throughput since the start: decode tokens over decode seconds (0 before any step).",
             engine.decode_s > 0 ? double(engine.decode_tokens) / engine.decode_s : 0.0);

  out.scalar("paligemma_image_cache_hits_total", "counter", "Images whose features came from the engine's cache.",
             engine.image_cache_hits);
  out.scalar("paligemma_image_cache_misses_total", "counter", "Images whose features were computed.",
             engine.image_cache_misses);

  out.family("paligemma_model_info", "gauge", "The model served, in its labels; the value is always 1.");
  out.sample("paligemma_model_info",
             {{"model", model_.name}, {"architecture", model_.architecture}, {"dtype", model_.dtype},
              {"resolution", std::to_string(model_.resolution)}},
             uint64_t(1));
  return out.text;
}

}  // namespace pg::server
