// Scaled dot-product attention over a key/value cache with a prefix-LM mask:
// query i may see key j iff j <= i or both lie in the prefix [0, prefix_len); an optional sliding
// window additionally hides keys with i - j >= window, except between two prefix positions.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace pg {

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // query head h reads kv head h / (n_heads / n_kv_heads)
  int64_t head_dim = 0;
  float scale = 1.f;        // multiplies q·k
  float softcap = 0.f;      // > 0: scores become softcap * tanh(scores / softcap), before masking
  int64_t prefix_len = 0;   // bidirectional block at the start of the sequence
  int64_t window = 0;       // > 0: sliding window length
  // Dtype the intermediate results are rounded to (scores after q·k, after scaling and each soft-cap
  // step, probabilities, output), as a reference running in bf16/f16 does; F32 keeps full precision.
  DType act = DType::F32;
};

// q: [T, n_heads * head_dim] for positions q_start .. q_start + T - 1 (0-based sequence indices);
// k, v: [n_keys, n_kv_heads * head_dim] for positions 0 .. n_keys - 1; out: [T, n_heads * head_dim].
// Vectorized and dispatched by instruction set (cpu_features.h): per head, the scores and the output are
// matrix products; the score transforms, the softmax and every rounding point are attention_reference's.
void attention(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& shape, float* out);

// Plain reference twin (and the scalar level): one query, one head, one key at a time.
void attention_reference(const float* q, int64_t T, int64_t q_start, const float* k, const float* v,
                         int64_t n_keys, const AttentionShape& shape, float* out);

// Whether query position i may attend to key position j under `shape`'s mask.
inline bool attention_allowed(int64_t i, int64_t j, const AttentionShape& shape) {
  const bool both_in_prefix = i < shape.prefix_len && j < shape.prefix_len;
  if (both_in_prefix) return true;
  if (j > i) return false;
  return shape.window <= 0 || i - j < shape.window;
}

}  // namespace pg
