// Hyper-parameters of a PaliGemma model (vision tower, projector, text decoder).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

struct VisionConfig {
  int64_t hidden = 1152;
  int64_t intermediate = 4304;
  int64_t layers = 27;
  int64_t heads = 16;
  int64_t image_size = 224;
  int64_t patch_size = 14;
  int64_t channels = 3;
  float layer_norm_eps = 1e-6f;

  int64_t patches_per_side() const { return image_size / patch_size; }
  int64_t tokens() const { return patches_per_side() * patches_per_side(); }
};

enum class TextArch { Gemma, Gemma2 };

struct TextConfig {
  TextArch arch = TextArch::Gemma;
  int64_t vocab = 257216;  // embedding rows
  int64_t hidden = 2048;
  int64_t intermediate = 16384;
  int64_t layers = 18;
  int64_t heads = 8;
  int64_t kv_heads = 1;
  int64_t head_dim = 256;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.f;
  float query_pre_attn_scalar = 256.f;  // q·k is scaled by its inverse square root
  float attn_softcap = 0.f;             // 0: none
  float final_softcap = 0.f;            // 0: none
  int64_t sliding_window = 0;           // 0: none
  int64_t max_positions = 8192;         // max_position_embeddings: longest sequence the model was built for
  std::vector<bool> sliding_layers;     // per layer: uses the sliding window
};

struct PaliGemmaConfig {
  VisionConfig vision;
  TextConfig text;
  int64_t image_token_id = 257152;
};

}  // namespace pg
