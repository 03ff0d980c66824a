#include "loader/checkpoint.h"

#include <filesystem>

#include "loader/config_json.h"
#include "paligemma/error.h"

namespace pg {

namespace fs = std::filesystem;

const char* const kGgufConfigKey = "paligemma.config_json";
const char* const kGgufTokenizerKey = "paligemma.tokenizer_model";
const char* const kGgufVaeKey = "paligemma.vae_npz";

std::string canonical_tensor_name(const std::string& name) {
  struct Rule {
    const char* from;
    const char* to;
  };
  // transformers 5.x names the vision tower without ".vision_model" in memory (and save_pretrained of a
  // freshly built model writes it so); the hub's files have it.
  static const Rule rules[] = {
      {"model.language_model.", "language_model.model."},
      {"model.vision_tower.vision_model.", "vision_tower.vision_model."},
      {"model.vision_tower.", "vision_tower.vision_model."},
      {"vision_tower.vision_model.", "vision_tower.vision_model."},
      {"vision_tower.", "vision_tower.vision_model."},
      {"model.multi_modal_projector.", "multi_modal_projector."},
      {"lm_head.", "language_model.lm_head."},
  };
  for (const Rule& r : rules) {
    const std::string from = r.from;
    if (name.compare(0, from.size(), from) == 0) return r.to + name.substr(from.size());
  }
  return name;
}

Checkpoint::Checkpoint(const std::string& dir, FileResidency residency) : dir_(dir) {
  if (fs::is_regular_file(dir)) {
    load_gguf(residency);
    return;
  }
  if (!fs::is_directory(dir))
    throw Error("model directory " + dir + " does not exist (pass --model with a downloaded hub checkpoint)");
  config_ = load_config_file((fs::path(dir) / "config.json").string());
  tokenizer_path_ = (fs::path(dir) / "tokenizer.model").string();
  if (!fs::exists(tokenizer_path_))
    throw Error("model directory " + dir + " has no tokenizer.model (download it from the hub with the weights)");
  files_ = SafetensorsCollection::open_directory(dir, residency);
  for (const auto& [name, t] : files_.tensors()) {
    const std::string canonical = canonical_tensor_name(name);
    if (tensors_.count(canonical))
      throw Error("tensor " + name + " appears under two spellings in " + dir);
    tensors_.emplace(canonical, StoredTensor{t.dtype, t.shape, t.data});
  }
}

void Checkpoint::load_gguf(FileResidency residency) {
  gguf_ = std::make_unique<GgufFile>(dir_, residency);
  config_ = parse_config_json(std::string(gguf_->string(kGgufConfigKey)), dir_ + " (" + kGgufConfigKey + ")");
  // SentencePiece loads by path: the embedded tokenizer.model goes into an in-memory file while the
  // checkpoint lives.
  tokenizer_file_ = std::make_unique<MemoryFile>(gguf_->bytes(kGgufTokenizerKey), "tokenizer.model");
  tokenizer_path_ = tokenizer_file_->path();
  for (const auto& [name, t] : gguf_->tensors()) {
    StoredTensor stored{DType::F32, t.shape, t.data};
    switch (t.type) {
      case GgmlType::F32: break;
      case GgmlType::F16: stored.dtype = DType::F16; break;
      case GgmlType::BF16: stored.dtype = DType::BF16; break;
      case GgmlType::Q8_0: stored.quant = QuantType::Q8_0; break;
      case GgmlType::Q4_0: stored.quant = QuantType::Q4_0; break;
    }
    if (stored.quant && t.shape.size() != 2)
      throw Error("model file " + dir_ + ": tensor " + name + " is quantized but not a matrix");
    if (!tensors_.emplace(canonical_tensor_name(name), stored).second)
      throw Error("tensor " + name + " appears under two spellings in " + dir_);
  }
}

TensorLookup Checkpoint::lookup() const {
  return [this](const std::string& name) -> const StoredTensor* {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  };
}

}  // namespace pg
