#include "generate/generator.h"

#include <algorithm>
#include <random>

#include "generate/beam_search.h"
#include "generate/step_clock.h"

namespace pg {

Generation generate_tokens(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                           const std::vector<int32_t>& eos_ids, const DecodeOptions& options,
                           const std::function<void(int32_t)>& on_token) {
  if (options.beams > 1) {
    Generation g = beam_search(model, prefix_rows, prefix_len, eos_ids, options);
    if (on_token)
      for (int32_t t : g.tokens) on_token(t);
    return g;
  }
  Generation g;
  if (options.max_tokens <= 0) return g;
  const bool sampling = options.sample && options.sampling.temperature > 0;
  std::mt19937_64 rng(options.seed);
  KVCache cache(model.config().text, prefix_len + options.max_tokens);
  StepClock clock;
  std::vector<float> hidden = model.forward(cache, prefix_rows.data(), prefix_len);
  for (int64_t step = 0; step < options.max_tokens; ++step) {
    std::vector<float> logits = model.logits(hidden);
    const int32_t next = sampling ? draw_token(filtered_distribution(logits, options.sampling), rng) : argmax(logits);
    if (options.keep_logits) g.logits.push_back(std::move(logits));
    g.tokens.push_back(next);
    g.steps = step + 1;
    clock.step_done(g);
    if (on_token) on_token(next);
    if (!options.ignore_eos && std::find(eos_ids.begin(), eos_ids.end(), next) != eos_ids.end()) {
      g.finish = FinishReason::Eos;
      break;
    }
    if (options.stop_check && options.stop_check(g.tokens)) {
      g.finish = FinishReason::Stop;
      break;
    }
    if (step + 1 == options.max_tokens) break;
    const std::vector<float> row = model.embed_token(next);
    hidden = model.forward(cache, row.data(), 1);
  }
  clock.finish(g);
  return g;
}

}  // namespace pg
