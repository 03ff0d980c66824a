#include "generate/generator.h"

#include "generate/beam_search.h"
#include "generate/step_clock.h"

namespace pg {

std::vector<float> image_rows(const ImageFeatures& features, const std::vector<ImageRGB8>& model_inputs) {
  std::vector<float> rows;
  for (const ImageRGB8& image : model_inputs) {
    const std::shared_ptr<const std::vector<float>> e = features(image);
    rows.insert(rows.end(), e->begin(), e->end());
  }
  return rows;
}

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
  Sequence seq(model.config().text, prefix_len, options, eos_ids);
  if (seq.finished() || seq.check_cancelled()) {
    g.finish = seq.finish_reason();
    return g;
  }
  StepClock clock;
  std::vector<float> hidden = model.forward(seq.cache(), prefix_rows.data(), prefix_len);
  for (;;) {
    const int32_t next = seq.choose(model.logits(hidden));
    g.steps = int64_t(seq.tokens().size());
    clock.step_done(g);
    if (on_token) on_token(next);
    if (seq.finished() || seq.check_cancelled()) break;
    const std::vector<float> row = model.embed_token(next);
    hidden = model.forward(seq.cache(), row.data(), 1);
  }
  clock.finish(g);
  g.tokens = seq.tokens();
  g.logits = std::move(seq.logits());
  g.finish = seq.finish_reason();
  return g;
}

}  // namespace pg
