// A PaliGemma model directory exactly as published on the hub: config.json, tokenizer.model and
// safetensors weights (one file or shards), under the hub's legacy tensor names or the newer
// `model.language_model.*` ones.
#pragma once
#include <map>
#include <string>

#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace pg {

// The hub's legacy spelling of a tensor name (`model.language_model.x` -> `language_model.model.x`,
// `model.vision_tower.x` and `vision_tower.x` -> `vision_tower.vision_model.x`,
// `model.multi_modal_projector.x` -> `multi_modal_projector.x`,
// `lm_head.x` -> `language_model.lm_head.x`); other names are returned unchanged.
std::string canonical_tensor_name(const std::string& name);

class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);  // throws pg::Error naming what is missing or wrong

  const PaliGemmaConfig& config() const { return config_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }
  const std::string& dir() const { return dir_; }
  // Lookup by canonical name, for bind_weights.
  TensorLookup lookup() const;

 private:
  std::string dir_;
  PaliGemmaConfig config_;
  std::string tokenizer_path_;
  SafetensorsCollection files_;
  std::map<std::string, StoredTensor> tensors_;
};

}  // namespace pg
