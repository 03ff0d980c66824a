// One sequence being decoded: its KV cache, its generated tokens, how it chooses the next token (argmax or
// seeded sampling) and why it ends (eos, max_tokens, a stop string, the context, cancellation). Greedy and
// sampled generation, beam search's hypotheses and the batching scheduler all end sequences by these rules.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "generate/sampling.h"
#include "model/paligemma.h"
#include "paligemma/decoding.h"

namespace pg {

// The decoding options plus what the caller adds that is no decoding choice.
struct DecodeOptions : DecodingOptions {
  bool keep_logits = false;  // return the logits each token was chosen from
  // New tokens the model's positions leave after the prefix: a max_tokens beyond it stops there with
  // FinishReason::Length.
  int64_t context_room = std::numeric_limits<int64_t>::max();
  // Text-level stops without a tokenizer here: called with the generated ids after every new token (beam
  // search: every candidate continuation); true ends that sequence there (the token stays in the output).
  std::function<bool(const std::vector<int32_t>& tokens)> stop_check;
  // Polled between steps: true ends the generation with FinishReason::Cancelled.
  std::function<bool()> cancelled;
};

// Throws pg::Error for options no decoding can follow (beams < 1 or too many for the vocabulary, beams
// with sampling, a temperature, top_k or top_p out of range, an empty stop string).
void check_decoding_options(const DecodingOptions& options, int64_t vocab);

// The sampling warpers' view of the options.
SamplingOptions sampling_options(const DecodingOptions& options);

// When a sequence ends. Checked in this order after each token: eos, stop string, token limit.
class FinishRules {
 public:
  FinishRules(const DecodeOptions& options, std::vector<int32_t> eos_ids);
  // Tokens the sequence may reach: max_tokens, or fewer where the context ends.
  int64_t token_limit() const { return limit_; }
  // Why a sequence that reached token_limit() ends.
  FinishReason limit_reason() const { return at_limit_; }
  // Why a sequence ends with `token` as its `length`-th generated token, or nullopt if it goes on;
  // `tokens` gives all its generated ids (asked only when there are stop strings to check).
  std::optional<FinishReason> after(int32_t token, int64_t length,
                                    const std::function<std::vector<int32_t>()>& tokens) const;
  bool cancelled() const { return cancelled_ && cancelled_(); }

 private:
  std::vector<int32_t> eos_ids_;  // empty with ignore_eos
  int64_t limit_;
  FinishReason at_limit_;  // MaxTokens, or Length when the context cut max_tokens
  std::function<bool(const std::vector<int32_t>&)> stop_check_;
  std::function<bool()> cancelled_;
};

// Greedy argmax (ties to the lowest id, as torch.argmax) or, with sampling on and temperature > 0, draws from
// the filtered distribution with a std::mt19937_64 seeded by the options.
class TokenChooser {
 public:
  explicit TokenChooser(const DecodingOptions& options);
  int32_t choose(const std::vector<float>& logits);

 private:
  bool sampling_;
  SamplingOptions warpers_;
  std::mt19937_64 rng_;
};

class Sequence {
 public:
  Sequence(const TextConfig& config, int64_t prefix_len, const DecodeOptions& options,
           const std::vector<int32_t>& eos_ids);
  KVCache& cache() { return cache_; }
  // Chooses the next token from `logits` and records it; then the sequence may be finished.
  int32_t choose(std::vector<float> logits);
  // Ends the sequence if its generation was cancelled (polled between steps); true when it is finished.
  bool check_cancelled();
  bool finished() const { return finish_.has_value(); }
  FinishReason finish_reason() const { return finish_.value_or(FinishReason::MaxTokens); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  std::vector<std::vector<float>>& logits() { return logits_; }

 private:
  FinishRules rules_;
  TokenChooser chooser_;
  bool keep_logits_;
  KVCache cache_;
  std::vector<int32_t> tokens_;
  std::vector<std::vector<float>> logits_;
  std::optional<FinishReason> finish_;
};

}  // namespace pg
