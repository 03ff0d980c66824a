// Token generation on top of the model: prefill the prefix once, then extend one token at a time.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/paligemma.h"

namespace pg {

struct DecodeOptions {
  int64_t max_tokens = 64;
  bool ignore_eos = false;   // generate exactly max_tokens
  bool keep_logits = false;  // return the logits each token was chosen from
};

struct Generation {
  std::vector<int32_t> tokens;              // generated ids, with the final <eos> if one was produced
  std::vector<std::vector<float>> logits;   // per generated token, when keep_logits
  double prefill_seconds = 0;               // until the first token's logits
  double decode_seconds = 0;                // the remaining steps
};

// Greedy decoding: argmax of the logits (ties go to the lowest id, as torch.argmax), stopping after
// <eos> or max_tokens. `on_token` (optional) sees each id as it is chosen.
Generation generate_greedy(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                           int32_t eos_id, const DecodeOptions& options,
                           const std::function<void(int32_t)>& on_token = {});

}  // namespace pg
