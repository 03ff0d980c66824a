// The server's metrics (tools/server/metrics.h): Prometheus' text format, escaping, cumulative buckets,
// counting from many threads. Hand-worked values; tests/server_test.py scrapes a running server.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <thread>

#include "server/metrics.h"

namespace pg::server {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Metrics, FormatsValues) {
  EXPECT_EQ(format_value(0.01), "0.01");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(format_value(120), "120");
  EXPECT_EQ(format_value(0.1 + 0.2), "0.30000000000000004");  // round-trips, not rounded to 0.3
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Metrics, HistogramBucketsAreCumulativeAndInclusive) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 7.0}) h.observe(v);  // 1.0 is in the le="1" bucket: bounds are inclusive
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 3}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum, 10.0);
}

TEST(Metrics, EndpointLabelIsARouteOrOther) {
  for (const char* route : {"/", "/health", "/metrics", "/v1/models", "/v1/generate", "/v1/chat/completions"})
    EXPECT_EQ(Metrics::endpoint(route), route);
  for (const char* path : {"", "/nope", "/metrics/", "/v1/generate?x=1", "/V1/models"})
    EXPECT_EQ(Metrics::endpoint(path), "other") << path;
}

TEST(Metrics, RendersTheExposition) {
  Metrics m({"my \"model\"", "PaliGemma 2 (Gemma 2)", "bf16", 224});
  m.count_request("/v1/generate", 200);
  m.count_request("/v1/generate", 200);
  m.count_request("/v1/generate", 400);
  m.count_request("/nope", 404);
  m.count_request("/other/thing", 404);
  m.observe_request_duration("/v1/generate", 0.3);
  m.observe_time_to_first_token(0.04);
  m.add_prompt_tokens(70);
  m.add_generated_tokens(6);
  EngineReading engine;
  engine.queued = 3;
  engine.running = 2;
  engine.decode_tokens = 10;
  engine.decode_s = 4;
  engine.image_cache_hits = 1;
  engine.image_cache_misses = 5;
  const std::string text = m.render(engine);

  EXPECT_TRUE(has_line(text, "# TYPE paligemma_requests_total counter"));
  EXPECT_TRUE(has_line(text, "paligemma_requests_total{endpoint=\"/v1/generate\",status=\"200\"} 2"));
  EXPECT_TRUE(has_line(text, "paligemma_requests_total{endpoint=\"/v1/generate\",status=\"400\"} 1"));
  EXPECT_TRUE(has_line(text, "paligemma_requests_total{endpoint=\"other\",status=\"404\"} 2"));

  EXPECT_TRUE(has_line(text, "# TYPE paligemma_request_duration_seconds histogram"));
  const std::string g = "paligemma_request_duration_seconds_bucket{endpoint=\"/v1/generate\",le=";
  EXPECT_TRUE(has_line(text, g + "\"0.01\"} 0"));
  EXPECT_TRUE(has_line(text, g + "\"0.25\"} 0"));
  EXPECT_TRUE(has_line(text, g + "\"0.5\"} 1"));
  EXPECT_TRUE(has_line(text, g + "\"120\"} 1"));
  EXPECT_TRUE(has_line(text, g + "\"+Inf\"} 1"));
  EXPECT_TRUE(has_line(text, "paligemma_request_duration_seconds_sum{endpoint=\"/v1/generate\"} 0.3"));
  EXPECT_TRUE(has_line(text, "paligemma_request_duration_seconds_count{endpoint=\"/v1/generate\"} 1"));
  // The chat endpoint's histogram is there before its first request, at zero.
  EXPECT_TRUE(has_line(text, "paligemma_request_duration_seconds_count{endpoint=\"/v1/chat/completions\"} 0"));
  EXPECT_TRUE(has_line(text, "paligemma_time_to_first_token_seconds_bucket{le=\"0.025\"} 0"));
  EXPECT_TRUE(has_line(text, "paligemma_time_to_first_token_seconds_bucket{le=\"0.05\"} 1"));
  EXPECT_TRUE(has_line(text, "paligemma_time_to_first_token_seconds_count 1"));

  EXPECT_TRUE(has_line(text, "paligemma_queue_depth 3"));
  EXPECT_TRUE(has_line(text, "paligemma_running_sequences 2"));
  EXPECT_TRUE(has_line(text, "paligemma_prompt_tokens_total 70"));
  EXPECT_TRUE(has_line(text, "paligemma_generated_tokens_total 6"));
  EXPECT_TRUE(has_line(text, "paligemma_decode_tokens_total 10"));
  EXPECT_TRUE(has_line(text, "paligemma_decode_seconds_total 4"));
  EXPECT_TRUE(has_line(text, "paligemma_decode_tokens_per_second 2.5"));
  EXPECT_TRUE(has_line(text, "paligemma_image_cache_hits_total 1"));
  EXPECT_TRUE(has_line(text, "paligemma_image_cache_misses_total 5"));
  EXPECT_TRUE(has_line(text, "paligemma_model_info{model=\"my \\\"model\\\"\",architecture=\"PaliGemma 2 (Gemma 2)\","
                             "dtype=\"bf16\",resolution=\"224\"} 1"));

  // Every family has its HELP line, then its TYPE line; the text ends with a line feed.
  std::istringstream in(text);
  std::string previous;
  for (std::string line; std::getline(in, line); previous = line)
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_EQ(previous.rfind("# HELP " + name + " ", 0), 0u) << line;
    }
  EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, NoThroughputBeforeAnyDecodingStep) {
  Metrics m({"m", "a", "f32", 112});
  EXPECT_TRUE(has_line(m.render({}), "paligemma_decode_tokens_per_second 0"));
}

TEST(Metrics, CountsFromManyThreads) {
  Metrics m({"m", "a", "f32", 112});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        m.count_request("/health", 200);
        m.observe_request_duration("/v1/generate", 0.5);
        m.add_generated_tokens(2);
      }
    });
  for (auto& t : threads) t.join();
  const std::string text = m.render({});
  EXPECT_TRUE(has_line(text, "paligemma_requests_total{endpoint=\"/health\",status=\"200\"} 8000"));
  EXPECT_TRUE(has_line(text, "paligemma_request_duration_seconds_count{endpoint=\"/v1/generate\"} 8000"));
  EXPECT_TRUE(has_line(text, "paligemma_request_duration_seconds_sum{endpoint=\"/v1/generate\"} 4000"));
  EXPECT_TRUE(has_line(text, "paligemma_generated_tokens_total 16000"));
}

}  // namespace
}  // namespace pg::server
