// How a generation chooses its tokens and when it ends: the one set of decoding options that the library,
// the command line (generate, batch) and the server all take.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

// Why a generation ended.
enum class FinishReason {
  Eos,        // the model produced <eos>
  MaxTokens,  // max_tokens tokens were generated
  Stop,       // the text reached one of the stop strings
  Length,     // the model's positions ran out before max_tokens
  Cancelled,  // the caller's cancellation callback said so (GenerateRequest::cancelled)
};

// "eos", "max_tokens", "stop", "length", "cancelled": the names the command line and the server print.
const char* finish_reason_name(FinishReason reason);

// Decoding; the defaults are greedy. docs/cli.md "Decoding, video and batch" describes each choice.
struct DecodingOptions {
  int64_t max_tokens = 64;
  bool ignore_eos = false;        // generate exactly max_tokens tokens
  int beams = 1;                  // > 1: beam search as transformers' generate(num_beams=beams)
  double length_penalty = 1.0;    // beam search: finished hypotheses score sum(log-probs) / length^length_penalty
  bool sample = false;            // draw tokens instead of taking the argmax (not with beams > 1)
  double temperature = 1.0;       // sampling: logits / temperature, then top-k, then top-p; 0 means greedy
  int64_t top_k = 0;              // sampling: keep the k largest logits (0: all)
  double top_p = 1.0;             // sampling: keep the smallest most-probable set whose mass is >= top_p
  uint64_t seed = 0;              // sampling: seed of the std::mt19937_64; the same seed gives the same tokens
  std::vector<std::string> stop;  // end once the text contains one of these; `text` is cut before it
};

// Where the earliest of `stops` begins in `text`, or std::string::npos: a generation's text is cut there.
size_t stop_position(const std::string& text, const std::vector<std::string>& stops);

}  // namespace pg
