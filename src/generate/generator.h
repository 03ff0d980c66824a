// Token generation on top of the model: prefill the prefix once, then extend one token at a time with greedy
// choice, sampling or beam search. Works on token ids only (no tokenizer); text-level stops come in as
// `stop_check`.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "generate/sampling.h"
#include "model/paligemma.h"
#include "paligemma/decoding.h"

namespace pg {

struct DecodeOptions {
  int64_t max_tokens = 64;
  bool ignore_eos = false;      // eos ids are ordinary tokens: generate exactly max_tokens (unless stop_check)
  bool keep_logits = false;     // return the logits each token was chosen from
  int beams = 1;                // > 1: beam search (beam_search.h)
  double length_penalty = 1.0;  // beam search: a finished hypothesis scores sum_logprobs / length^length_penalty
  bool sample = false;          // draw from the filtered distribution; with temperature 0 it is greedy
  SamplingOptions sampling;
  uint64_t seed = 0;  // seeds the std::mt19937_64 of the draws
  // Called with the generated ids after every new token (for beam search: every candidate continuation);
  // true ends that sequence there, as an eos would (the token stays in the output).
  std::function<bool(const std::vector<int32_t>& tokens)> stop_check;
};

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

// Greedy (argmax; ties go to the lowest id, as torch.argmax), sampling or beam search as `options` say,
// stopping after an id of `eos_ids`, a true `stop_check` or max_tokens. `on_token` (optional) sees each id as
// it is chosen (beam search: the returned ids, once the search ends).
Generation generate_tokens(const PaliGemmaModel& model, const std::vector<float>& prefix_rows, int64_t prefix_len,
                           const std::vector<int32_t>& eos_ids, const DecodeOptions& options,
                           const std::function<void(int32_t)>& on_token = {});

}  // namespace pg
