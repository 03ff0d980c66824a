// Token generation on top of the model: prefill the prefix once, then extend one token at a time with greedy
// choice, sampling or beam search. Works on token ids only (no tokenizer); text-level stops come in as
// `DecodeOptions::stop_check`.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "generate/sequence.h"
#include "model/paligemma.h"
#include "paligemma/decoding.h"
#include "paligemma/image.h"

namespace pg {

struct Generation {
  std::vector<int32_t> tokens;             // generated ids, with the final eos if one was produced
  std::vector<std::vector<float>> logits;  // per generated token, when keep_logits
  FinishReason finish = FinishReason::MaxTokens;
  float score = 0;             // beam search: the returned hypothesis' score; otherwise 0
  int64_t steps = 0;           // decoding steps run (beam search can stop before its best ends)
  double prefill_seconds = 0;  // until the first token's logits
  double decode_seconds = 0;   // the remaining steps
  std::vector<double> step_seconds;  // each of those steps: from one token (beam search: step) to the next
};

// An image's features (projector output rows) at the model's resolution, e.g. Engine::image_features.
using ImageFeatures = std::function<std::shared_ptr<const std::vector<float>>(const ImageRGB8& model_input)>;

// The image rows of a prompt, [images * image tokens, text hidden]: each image's features in order, ready for
// PaliGemmaModel::embed_prompt.
std::vector<float> image_rows(const ImageFeatures& features, const std::vector<ImageRGB8>& model_inputs);

// Greedy, sampling or beam search as `options` say, each sequence ending by FinishRules (an id of `eos_ids`,
// a true stop_check, max_tokens, the context, cancellation). `on_token` (optional) sees each id as it is
// chosen (beam search: the returned ids, once the search ends).
Generation generate_tokens(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                           const std::vector<int32_t>& eos_ids, const DecodeOptions& options,
                           const std::function<void(int32_t)>& on_token = {});

}  // namespace pg
