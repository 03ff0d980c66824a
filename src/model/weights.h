// The tensors of a PaliGemma model, as views into stored (memory-mapped) data. Matrices stay in their
// stored precision; small vectors (norms, biases) are widened to float32 once at load.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace pg {

// y = x·Wᵀ + b.
struct Linear {
  Weight weight;            // [out, in], dense or block-quantized (a quantized file, docs/quantization.md)
  std::vector<float> bias;  // empty: no bias
};

struct VisionLayer {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
  Linear q, k, v, o, fc1, fc2;
};

struct TextLayer {
  std::vector<float> input_norm;          // before attention
  std::vector<float> post_attention_norm; // Gemma: before the MLP; Gemma 2: on the attention output
  std::vector<float> pre_ffn_norm;        // Gemma 2 only
  std::vector<float> post_ffn_norm;       // Gemma 2 only
  Linear q, k, v, o, gate, up, down;
};

struct ModelWeights {
  Linear patch_embedding;      // conv weight viewed as [hidden, channels * patch * patch]
  Weight position_embedding;   // [tokens, hidden], dense
  std::vector<VisionLayer> vision_layers;
  std::vector<float> post_ln_w, post_ln_b;
  Linear projector;
  Weight embed_tokens;         // [vocab, hidden], also the tied output projection
  std::vector<TextLayer> text_layers;
  std::vector<float> final_norm;
  DType compute_dtype = DType::F32;  // the checkpoint's dtype for activations (mirrors reference casts)
};

// Collects and shape-checks every tensor the config implies. Throws pg::Error naming a missing or
// mis-shaped tensor (expected vs got).
ModelWeights bind_weights(const PaliGemmaConfig& config, const TensorLookup& lookup);

}  // namespace pg
