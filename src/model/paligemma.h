// The PaliGemma network: SigLIP vision tower, linear projector, Gemma / Gemma 2 decoder with a
// prefix-LM attention mask and a key/value cache. Knows nothing about files, tokenizers or images on disk.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "kernels/ops.h"
#include "model/weights.h"

namespace pg {

struct ModelOptions {
  // Gemma 2 sliding window as transformers 5.x applies it (prefix pairs stay visible); false disables
  // it altogether, as big_vision does.
  bool sliding_window = true;
  // Apply the config's final logit soft-cap (Gemma 2: 30); transformers 5.x omits it.
  bool final_softcap = true;
  // Round activations to the checkpoint's dtype (bf16/f16) wherever transformers' eager path produces a
  // tensor in that dtype, so that results follow the reference's rounding; false computes every
  // activation in float32 (as big_vision does). No effect on f32 checkpoints.
  bool reference_rounding = true;
};

// Keys and values of every decoder layer for one sequence.
class KVCache {
 public:
  KVCache(const TextConfig& config, int64_t capacity);
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t prefix_len() const { return prefix_len_; }

 private:
  friend class PaliGemmaModel;
  int64_t capacity_;
  int64_t length_ = 0;
  int64_t prefix_len_ = 0;
  int64_t kv_dim_;
  std::vector<std::vector<float>> k_, v_;  // per layer [capacity, kv_heads * head_dim]
};

class PaliGemmaModel {
 public:
  PaliGemmaModel(PaliGemmaConfig config, ModelWeights weights, ModelOptions options = {});

  const PaliGemmaConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  DType compute_dtype() const { return w_.compute_dtype; }

  // SigLIP output after post_layernorm for one image [3, S, S] -> [tokens, vision hidden].
  std::vector<float> vision_features(const float* pixels_chw) const;
  // Projector output for one image, before any scaling -> [tokens, text hidden].
  std::vector<float> image_embeddings(const float* pixels_chw) const;

  // Input rows of the decoder for a prompt: token embeddings times the normalizer sqrt(hidden) (rounded
  // to the checkpoint dtype, as the reference casts it), image positions (id == image_token_id) filled
  // with `image_rows` in order (projector output / sqrt(hidden) * normalizer).
  std::vector<float> embed_prompt(const std::vector<int32_t>& ids, const std::vector<float>& image_rows) const;

  // Runs `count` rows of decoder input through every layer, appending their keys and values to the cache.
  // The first call on an empty cache is the prefix (fully bidirectional); later calls are causal.
  // Returns the final-norm hidden state of the last row.
  std::vector<float> forward(KVCache& cache, const float* rows, int64_t count) const;

  // One decoding step for several sequences at once (the weights are read once for all of them):
  // row b of `rows` is the next input row of caches[b]. Returns each sequence's final-norm hidden state.
  std::vector<std::vector<float>> forward_batch(const std::vector<KVCache*>& caches, const float* rows) const;

  // Prefills of several new sequences in one pass over the weights: rows[b] ([count_b, hidden]) is the
  // whole prompt of the empty caches[b]. Returns each sequence's final-norm hidden state of its last row.
  std::vector<std::vector<float>> prefill_batch(const std::vector<KVCache*>& caches,
                                                const std::vector<std::vector<float>>& rows) const;

  // Vocabulary logits of a final hidden state (tied output projection, soft-cap if enabled).
  std::vector<float> logits(const std::vector<float>& hidden) const;
  // Logits of several hidden states in one pass over the output projection: [hidden.size(), vocab].
  std::vector<float> logits_batch(const std::vector<std::vector<float>>& hidden) const;

  // The decoder input row of one token id (for decoding steps).
  std::vector<float> embed_token(int32_t id) const;

 private:
  // y = x·Wᵀ + b, rounded to the activation dtype.
  void linear(const Linear& L, const float* x, int64_t rows, float* y) const;
  void round_act(float* x, int64_t n) const { round_inplace(x, size_t(n), act_); }
  void vision_layer(const VisionLayer& L, std::vector<float>& x, int64_t n) const;
  // Consecutive rows of the decoder input that extend one sequence.
  struct SequenceRows {
    KVCache* cache;
    int64_t count;
  };
  // Runs every decoder layer over x ([sum of counts, hidden], sequences in order), appending keys and
  // values to each sequence's cache; returns the final-norm hidden state of each sequence's last row.
  std::vector<std::vector<float>> run_decoder(const std::vector<SequenceRows>& seqs, std::vector<float> x) const;
  void text_layer(int64_t index, const std::vector<SequenceRows>& seqs, std::vector<float>& x, int64_t total) const;

  PaliGemmaConfig config_;
  ModelWeights w_;
  ModelOptions options_;
  float normalizer_;  // sqrt(text hidden) rounded to the compute dtype
  DType act_;         // dtype activations are rounded to (F32: none)
};

}  // namespace pg
