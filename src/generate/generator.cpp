#include "generate/generator.h"

#include <algorithm>
#include <chrono>

namespace pg {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Generation generate_greedy(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                           int32_t eos_id, const DecodeOptions& options,
                           const std::function<void(int32_t)>& on_token) {
  Generation g;
  if (options.max_tokens <= 0) return g;
  KVCache cache(model.config().text, prefix_len + options.max_tokens);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> hidden = model.forward(cache, prefix_rows.data(), prefix_len);
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    std::vector<float> logits = model.logits(hidden);
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (options.keep_logits) g.logits.push_back(std::move(logits));
    g.tokens.push_back(next);
    if (step == 0) {
      g.prefill_seconds = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
    }
    if (on_token) on_token(next);
    if ((next == eos_id && !options.ignore_eos) || step + 1 == options.max_tokens) break;
    const std::vector<float> row = model.embed_token(next);
    hidden = model.forward(cache, row.data(), 1);
  }
  g.decode_seconds = g.tokens.size() > 1 ? seconds_since(t0) : 0.0;
  return g;
}

}  // namespace pg
