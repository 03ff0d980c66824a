// The one reading of decoding options, for every front end: `paligemma generate` (flags), `paligemma batch`
// (JSON lines) and `paligemma serve` (JSON bodies, form fields, the OpenAI endpoint). The same options mean
// the same decoding everywhere:
// - greedy by default; sampling when any of temperature / top_k / top_p is given (temperature 0 is greedy);
// - beams 1 to kMaxBeams, not with sampling; length_penalty only with beams > 1; seed only with sampling;
// - stop: one string or several, none empty; ignore_eos: go on after <eos>.
// Errors name the field as the request spelled it ("top_k" in JSON, --top-k on the command line).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "paligemma/decoding.h"
#include "paligemma/error.h"

namespace pg::tools {

inline constexpr int kMaxBeams = 8;
inline constexpr double kMaxTemperature = 100;
inline constexpr double kMaxLengthPenalty = 100;

struct DecodingLimits {
  int64_t max_tokens = int64_t{1} << 20;  // the server's --max-tokens-limit lowers it
};

// A decoding option that cannot be followed; the message says which and why.
class DecodingOptionsError : public Error {
 public:
  using Error::Error;
};

// The JSON names of the decoding fields: max_tokens, beams, length_penalty, temperature, top_k, top_p, seed,
// stop, ignore_eos.
const std::vector<std::string>& decoding_keys();

// The decoding fields of a JSON object (null counts as absent); `max_tokens_key` is the name max_tokens
// goes by (the OpenAI endpoint's max_completion_tokens). Throws DecodingOptionsError.
DecodingOptions decoding_options_from_json(const nlohmann::json& request, const DecodingLimits& limits = {},
                                           const std::string& max_tokens_key = "max_tokens");

// The same from command-line flags, each key's flag spelled --max-tokens, --top-k, ...: `values(flag)` gives
// the values given for it (empty: not given; --ignore-eos takes none). Throws DecodingOptionsError.
using FlagValues = std::function<std::vector<std::string>(const std::string& flag)>;
DecodingOptions decoding_options_from_flags(const FlagValues& values, const DecodingLimits& limits = {});

}  // namespace pg::tools
