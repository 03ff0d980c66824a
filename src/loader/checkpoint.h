// A PaliGemma model directory exactly as published on the hub: config.json, tokenizer.model and
// safetensors weights (one file or shards), under the hub's legacy tensor names or the newer
// `model.language_model.*` ones.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "core/file.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace pg {

// The hub's legacy spelling of a tensor name (`model.language_model.x` -> `language_model.model.x`,
// `model.vision_tower.x` and `vision_tower.x` -> `vision_tower.vision_model.x`,
// `model.multi_modal_projector.x` -> `multi_modal_projector.x`,
// `lm_head.x` -> `language_model.lm_head.x`); other names are returned unchanged.
std::string canonical_tensor_name(const std::string& name);

// Metadata keys of a quantized GGUF file holding config.json's text and tokenizer.model's bytes.
extern const char* const kGgufConfigKey;
extern const char* const kGgufTokenizerKey;
// Metadata key of the model's own mask decoder (its directory's vae.npz, when it had one), as bytes.
extern const char* const kGgufVaeKey;

class Checkpoint {
 public:
  // A hub model directory, or a single GGUF file written by `paligemma quantize` (docs/quantization.md),
  // which carries config.json and tokenizer.model inside. Throws pg::Error naming what is missing or wrong.
  // `residency`: how the weight files are held (FileResidency).
  explicit Checkpoint(const std::string& dir, FileResidency residency = FileResidency::Mapped);

  const PaliGemmaConfig& config() const { return config_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }
  const std::string& dir() const { return dir_; }
  // Lookup by canonical name, for bind_weights.
  TensorLookup lookup() const;
  // Every tensor by canonical name.
  const std::map<std::string, StoredTensor>& tensors() const { return tensors_; }
  // Reads every weight page into memory now (SafetensorsCollection::prefault); empty, or why it was skipped.
  std::string prefault_weights() const { return gguf_ ? prefault_mapped_files({&gguf_->mapped()}) : files_.prefault(); }

 private:
  void load_gguf(FileResidency residency);

  std::string dir_;
  PaliGemmaConfig config_;
  std::string tokenizer_path_;
  SafetensorsCollection files_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<MemoryFile> tokenizer_file_;  // a GGUF's tokenizer.model
  std::map<std::string, StoredTensor> tensors_;
};

}  // namespace pg
