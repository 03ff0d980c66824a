#include "generate/sequence.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "paligemma/error.h"

namespace pg {

void check_decoding_options(const DecodingOptions& req, int64_t vocab) {
  if (req.beams < 1) throw Error("beams must be at least 1 (1 is greedy decoding)");
  if (int64_t(req.beams) * 4 > vocab)
    throw Error("beams " + std::to_string(req.beams) + " is too many for a vocabulary of " + std::to_string(vocab) +
                " (at most " + std::to_string(vocab / 4) + ")");
  if (req.beams > 1 && req.sample) throw Error("beam search does not sample: use either beams > 1 or sampling");
  if (!std::isfinite(req.length_penalty)) throw Error("length_penalty must be a finite number");
  if (!(req.temperature >= 0) || !std::isfinite(req.temperature))
    throw Error("temperature must be a finite number >= 0 (0 is greedy)");
  if (req.top_k < 0) throw Error("top_k must be >= 0 (0 keeps every token)");
  if (!(req.top_p > 0 && req.top_p <= 1)) throw Error("top_p must be in (0, 1]");
  for (const std::string& s : req.stop)
    if (s.empty()) throw Error("a stop string must not be empty");
}

SamplingOptions sampling_options(const DecodingOptions& options) {
  return {options.temperature, options.top_k, options.top_p};
}

FinishRules::FinishRules(const DecodeOptions& options, std::vector<int32_t> eos_ids)
    : eos_ids_(options.ignore_eos ? std::vector<int32_t>{} : std::move(eos_ids)),
      limit_(std::max<int64_t>(0, std::min(options.max_tokens, options.context_room))),
      at_limit_(options.context_room < options.max_tokens ? FinishReason::Length : FinishReason::MaxTokens),
      stop_check_(options.stop_check),
      cancelled_(options.cancelled) {}

std::optional<FinishReason> FinishRules::after(int32_t token, int64_t length,
                                               const std::function<std::vector<int32_t>()>& tokens) const {
  if (std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end()) return FinishReason::Eos;
  if (stop_check_ && stop_check_(tokens())) return FinishReason::Stop;
  if (length >= limit_) return at_limit_;
  return std::nullopt;
}

TokenChooser::TokenChooser(const DecodingOptions& options)
    : sampling_(options.sample && options.temperature > 0), warpers_(sampling_options(options)), rng_(options.seed) {}

int32_t TokenChooser::choose(const std::vector<float>& logits) {
  return sampling_ ? draw_token(filtered_distribution(logits, warpers_), rng_) : argmax(logits);
}

Sequence::Sequence(const TextConfig& config, int64_t prefix_len, const DecodeOptions& options,
                   const std::vector<int32_t>& eos_ids)
    : rules_(options, eos_ids),
      chooser_(options),
      keep_logits_(options.keep_logits),
      cache_(config, prefix_len + rules_.token_limit()) {
  if (rules_.token_limit() == 0) finish_ = rules_.limit_reason();
}

int32_t Sequence::choose(std::vector<float> logits) {
  const int32_t token = chooser_.choose(logits);
  if (keep_logits_) logits_.push_back(std::move(logits));
  tokens_.push_back(token);
  finish_ = rules_.after(token, int64_t(tokens_.size()), [this] { return tokens_; });
  return token;
}

bool Sequence::check_cancelled() {
  if (!finish_ && rules_.cancelled()) finish_ = FinishReason::Cancelled;
  return finished();
}

}  // namespace pg
