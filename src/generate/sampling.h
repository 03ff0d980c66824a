// Choosing the next token from one step's logits: greedy argmax, or sampling from the distribution that
// transformers' logits warpers leave (temperature, then top-k, then top-p, the order of
// GenerationMixin._get_logits_processor in transformers/generation/utils.py).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace pg {

struct SamplingOptions {
  double temperature = 1.0;  // > 0; logits are divided by it
  int64_t top_k = 0;         // keep the k largest logits (and any equal to the k-th); 0 keeps all
  double top_p = 1.0;        // in (0, 1]: keep the smallest most-probable set whose mass is >= top_p
};

// Index of the largest value; ties go to the lowest index, as torch.argmax.
int32_t argmax(const std::vector<float>& logits);

// log_softmax in float32 (max-shifted; the sum of exponentials accumulated in double).
std::vector<float> log_softmax(const std::vector<float>& logits);

// The probabilities sampling draws from: softmax(logits / temperature) restricted to the tokens top-k and
// top-p keep and renormalized (zero elsewhere). Mirrors TemperatureLogitsWarper, TopKLogitsWarper
// (removes logits < the k-th largest) and TopPLogitsWarper (removes the least probable tokens whose
// cumulative mass is <= 1 - top_p, always keeping the most probable one) in transformers/generation/logits_process.py.
std::vector<double> filtered_distribution(const std::vector<float>& logits, const SamplingOptions& options);

// One draw from `probabilities` (non-negative, summing to ~1): u = the top 53 bits of rng() / 2^53, uniform in
// [0, 1); the token is the first, in ascending id order, whose cumulative probability exceeds u (inverse CDF).
int32_t draw_token(const std::vector<double>& probabilities, std::mt19937_64& rng);

}  // namespace pg
