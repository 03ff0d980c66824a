// The PaliGemma network: SigLIP vision tower, linear projector, Gemma / Gemma 2 decoder with a
// prefix-LM attention mask and a key/value cache. Knows nothing about files, tokenizers or images on disk.
#pragma once
#include <cstdint>
#include <vector>

#include "core/workspace.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/config.h"
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

// Keys and values of every decoder layer for one sequence, and the workspace its decoder calls compute in
// (so a sequence's steps reuse the activation memory its prefill grew; a copy starts with an empty one).
class KVCache {
 public:
  KVCache(const TextConfig& config, int64_t capacity);
  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t prefix_len() const { return prefix_len_; }
  Workspace& workspace() { return workspace_; }

 private:
  friend class PaliGemmaModel;
  int64_t capacity_;
  int64_t length_ = 0;
  int64_t prefix_len_ = 0;
  int64_t kv_dim_;
  std::vector<std::vector<float>> k_, v_;  // per layer [capacity, kv_heads * head_dim]
  Workspace workspace_;
};

class PaliGemmaModel {
 public:
  PaliGemmaModel(PaliGemmaConfig config, ModelWeights weights, ModelOptions options = {});

  const PaliGemmaConfig& config() const { return config_; }
  const ModelOptions& options() const { return options_; }
  DType compute_dtype() const { return w_.compute_dtype; }

  // Every method computes its activations in a Workspace: the one passed (reused across calls, the way
  // to allocate nothing per call), else the KV cache's (caches[0]'s for a batch), else one of its own for
  // the call. Concurrent calls need workspaces (and caches) of their own.

  // SigLIP output after post_layernorm for one image [3, S, S] -> [tokens, vision hidden].
  std::vector<float> vision_features(const float* pixels_chw, Workspace* workspace = nullptr) const;
  // Projector output for one image, before any scaling -> [tokens, text hidden].
  std::vector<float> image_embeddings(const float* pixels_chw, Workspace* workspace = nullptr) const;

  // Input rows of the decoder for a prompt: token embeddings times the normalizer sqrt(hidden) (rounded
  // to the checkpoint dtype, as the reference casts it), image positions (id == image_token_id) filled
  // with `image_rows` in order (projector output / sqrt(hidden) * normalizer).
  std::vector<float> embed_prompt(const std::vector<int32_t>& ids, const std::vector<float>& image_rows) const;

  // Runs `count` rows of decoder input through every layer, appending their keys and values to the cache.
  // The first call on an empty cache is the prefix (fully bidirectional); later calls are causal.
  // Returns the final-norm hidden state of the last row.
  std::vector<float> forward(KVCache& cache, const float* rows, int64_t count) const;

  // One decoding step for several sequences at once (the weights are read once for all of them):
  // row b of `rows` is the next input row of caches[b]. Returns each sequence's final-norm hidden state,
  // bit for bit what forward(*caches[b], row b, 1) returns (the products run with Rows::Independent).
  std::vector<std::vector<float>> forward_batch(const std::vector<KVCache*>& caches, const float* rows,
                                                Workspace* workspace = nullptr) const;

  // Prefills of several new sequences in one pass over the weights: rows[b] ([count_b, hidden]) is the
  // whole prompt of the empty caches[b]. Returns each sequence's final-norm hidden state of its last row.
  std::vector<std::vector<float>> prefill_batch(const std::vector<KVCache*>& caches,
                                                const std::vector<std::vector<float>>& rows,
                                                Workspace* workspace = nullptr) const;

  // Vocabulary logits of a final hidden state (tied output projection, soft-cap if enabled).
  std::vector<float> logits(const std::vector<float>& hidden, Workspace* workspace = nullptr) const;
  // Logits of several hidden states in one pass over the output projection: [hidden.size(), vocab], each
  // row bit for bit what logits() gives for it alone.
  std::vector<float> logits_batch(const std::vector<std::vector<float>>& hidden,
                                  Workspace* workspace = nullptr) const;

  // The decoder input row of one token id (for decoding steps).
  std::vector<float> embed_token(int32_t id) const;

 private:
  // y = x·Wᵀ + b, rounded to the activation dtype: the one place a linear layer is applied.
  void linear(const Linear& L, const float* x, int64_t rows, float* y, Rows mode = Rows::Shared) const;
  // The reference's rounding of a result to the activation dtype (no-op in float32).
  void round_act(float* x, int64_t n) const { round_inplace(x, size_t(n), act_); }
  // x += h, rounded: a residual connection.
  void add_residual(float* x, const float* h, int64_t n) const;
  // Gemma's RMSNorm with its zero-centred weight, y = x / rms(x) · (1 + w), rounded. In-place allowed.
  void gemma_rms_norm(const float* x, int64_t rows, const std::vector<float>& w, float* y) const;
  // SigLIP's LayerNorm, y = (x - mean) / std · w + b, rounded.
  void siglip_layer_norm(const float* x, int64_t rows, const std::vector<float>& w, const std::vector<float>& b,
                         float* y) const;
  void embed_token_into(int32_t id, float* row) const;

  void vision_layer(const VisionLayer& L, float* x, int64_t n, Workspace& ws) const;
  // Consecutive rows of the decoder input that extend one sequence.
  struct SequenceRows {
    KVCache* cache;
    int64_t count;
  };
  // Runs every decoder layer over `rows` ([sum of counts, hidden], sequences in order), appending keys and
  // values to each sequence's cache; returns the final-norm hidden state of each sequence's last row.
  std::vector<std::vector<float>> run_decoder(const std::vector<SequenceRows>& seqs, const float* rows, Rows mode,
                                              Workspace& ws) const;
  void text_layer(int64_t index, const std::vector<SequenceRows>& seqs, const int64_t* positions, float* x,
                  int64_t total, Rows mode, Workspace& ws) const;

  PaliGemmaConfig config_;
  ModelWeights w_;
  ModelOptions options_;
  float normalizer_;  // sqrt(text hidden) rounded to the compute dtype
  DType act_;         // dtype activations are rounded to (F32: none)
};

}  // namespace pg
