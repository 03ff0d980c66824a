#include "io/config_json.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "paligemma/error.h"

namespace pg {

using nlohmann::json;

namespace {

// Reads key as T when present and not null, else returns fallback; a value of the wrong type is an error.
template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  // json's get<int64_t>() of a float is a cast, undefined for 1e300: whole numbers only.
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    if (!it->is_number_integer()) throw Error(where + ": \"" + key + "\" must be a whole number (" + it->dump() + ")");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": \"" + key + "\" has the wrong type (" + it->dump() + ")");
  }
}

void require_positive(int64_t v, const char* what, const std::string& where) {
  if (v <= 0) throw Error(where + ": " + what + " must be positive, got " + std::to_string(v));
}

VisionConfig parse_vision(const json* j, const std::string& where) {
  VisionConfig v;
  if (!j) {
    // PaliGemmaConfig's own default vision tower (transformers configuration_paligemma.py).
    v.hidden = 1152; v.intermediate = 4096; v.layers = 27; v.heads = 16; v.image_size = 224; v.patch_size = 14;
    return v;
  }
  // SiglipVisionConfig defaults.
  v.hidden = get_or<int64_t>(*j, "hidden_size", 768, where);
  v.intermediate = get_or<int64_t>(*j, "intermediate_size", 3072, where);
  v.layers = get_or<int64_t>(*j, "num_hidden_layers", 12, where);
  v.heads = get_or<int64_t>(*j, "num_attention_heads", 12, where);
  v.channels = get_or<int64_t>(*j, "num_channels", 3, where);
  v.image_size = get_or<int64_t>(*j, "image_size", 224, where);
  v.patch_size = get_or<int64_t>(*j, "patch_size", 16, where);
  v.layer_norm_eps = get_or<float>(*j, "layer_norm_eps", 1e-6f, where);
  const std::string act = get_or<std::string>(*j, "hidden_act", "gelu_pytorch_tanh", where);
  if (act != "gelu_pytorch_tanh" && act != "gelu_new" && act != "gelu_fast")
    throw Error(where + ": vision hidden_act \"" + act + "\" is not supported (PaliGemma uses gelu_pytorch_tanh)");
  if (get_or<bool>(*j, "vision_use_head", false, where))
    throw Error(where + ": vision_use_head=true is not a PaliGemma vision tower");
  require_positive(v.hidden, "vision hidden_size", where);
  require_positive(v.layers, "vision num_hidden_layers", where);
  require_positive(v.heads, "vision num_attention_heads", where);
  require_positive(v.patch_size, "vision patch_size", where);
  if (v.channels != 3) throw Error(where + ": vision num_channels must be 3");
  if (v.hidden % v.heads != 0) throw Error(where + ": vision hidden_size is not divisible by num_attention_heads");
  if (v.image_size <= 0 || v.image_size % v.patch_size != 0)
    throw Error(where + ": vision image_size " + std::to_string(v.image_size) + " is not a multiple of patch_size " +
                std::to_string(v.patch_size));
  return v;
}

TextConfig parse_text(const json* j, int64_t top_vocab, const std::string& where) {
  TextConfig t;
  if (!j) {
    // PaliGemmaConfig's own default text model: Gemma 2B.
    t.arch = TextArch::Gemma;
    t.vocab = top_vocab; t.hidden = 2048; t.intermediate = 16384; t.layers = 18; t.heads = 8; t.kv_heads = 1;
    t.head_dim = 256; t.query_pre_attn_scalar = 256.f;
    return t;
  }
  const std::string type = get_or<std::string>(*j, "model_type", "gemma", where);
  if (type == "gemma") {
    t.arch = TextArch::Gemma;
    t.vocab = get_or<int64_t>(*j, "vocab_size", 256000, where);
    t.hidden = get_or<int64_t>(*j, "hidden_size", 3072, where);
    t.intermediate = get_or<int64_t>(*j, "intermediate_size", 24576, where);
    t.layers = get_or<int64_t>(*j, "num_hidden_layers", 28, where);
    t.heads = get_or<int64_t>(*j, "num_attention_heads", 16, where);
    t.kv_heads = get_or<int64_t>(*j, "num_key_value_heads", 16, where);
    t.head_dim = get_or<int64_t>(*j, "head_dim", 256, where);
    t.query_pre_attn_scalar = float(t.head_dim);
  } else if (type == "gemma2") {
    t.arch = TextArch::Gemma2;
    t.vocab = get_or<int64_t>(*j, "vocab_size", 256000, where);
    t.hidden = get_or<int64_t>(*j, "hidden_size", 2304, where);
    t.intermediate = get_or<int64_t>(*j, "intermediate_size", 9216, where);
    t.layers = get_or<int64_t>(*j, "num_hidden_layers", 26, where);
    t.heads = get_or<int64_t>(*j, "num_attention_heads", 8, where);
    t.kv_heads = get_or<int64_t>(*j, "num_key_value_heads", 4, where);
    t.head_dim = get_or<int64_t>(*j, "head_dim", 256, where);
    t.query_pre_attn_scalar = get_or<float>(*j, "query_pre_attn_scalar", 256.f, where);
    t.attn_softcap = get_or<float>(*j, "attn_logit_softcapping", 50.f, where);
    t.final_softcap = get_or<float>(*j, "final_logit_softcapping", 30.f, where);
    t.sliding_window = get_or<int64_t>(*j, "sliding_window", 4096, where);
  } else {
    throw Error(where + ": text_config model_type \"" + type + "\" is not supported (expected gemma or gemma2)");
  }
  t.rms_norm_eps = get_or<float>(*j, "rms_norm_eps", 1e-6f, where);
  t.max_positions = get_or<int64_t>(*j, "max_position_embeddings", 8192, where);
  t.rope_theta = get_or<float>(*j, "rope_theta", 10000.f, where);
  if (auto rp = j->find("rope_parameters"); rp != j->end() && rp->is_object())
    t.rope_theta = get_or<float>(*rp, "rope_theta", t.rope_theta, where);
  const std::string act = get_or<std::string>(*j, "hidden_activation",
                                              get_or<std::string>(*j, "hidden_act", "gelu_pytorch_tanh", where), where);
  if (act != "gelu_pytorch_tanh" && act != "gelu" && act != "gelu_new")
    throw Error(where + ": text hidden activation \"" + act + "\" is not supported (Gemma uses gelu_pytorch_tanh)");
  require_positive(t.vocab, "text vocab_size", where);
  require_positive(t.hidden, "text hidden_size", where);
  require_positive(t.layers, "text num_hidden_layers", where);
  require_positive(t.heads, "text num_attention_heads", where);
  require_positive(t.kv_heads, "text num_key_value_heads", where);
  require_positive(t.head_dim, "text head_dim", where);
  if (t.head_dim % 2) throw Error(where + ": text head_dim must be even for rotary embeddings");
  if (t.heads % t.kv_heads) throw Error(where + ": num_attention_heads must be a multiple of num_key_value_heads");
  // One flag per layer is allocated here: a corrupt count must not become a huge allocation.
  if (t.layers > 4096)
    throw Error(where + ": text num_hidden_layers " + std::to_string(t.layers) + " is implausible (at most 4096)");
  t.sliding_layers.assign(size_t(t.layers), false);
  if (t.arch == TextArch::Gemma2) {
    auto lt = j->find("layer_types");
    if (lt != j->end() && lt->is_array()) {
      if (int64_t(lt->size()) != t.layers)
        throw Error(where + ": layer_types has " + std::to_string(lt->size()) + " entries for " +
                    std::to_string(t.layers) + " layers");
      for (size_t i = 0; i < lt->size(); ++i) t.sliding_layers[i] = (*lt)[i] == "sliding_attention";
    } else {
      // Gemma 2 alternates: even-indexed layers slide, odd ones are global.
      for (int64_t i = 0; i < t.layers; ++i) t.sliding_layers[size_t(i)] = (i % 2 == 0);
    }
  }
  return t;
}

}  // namespace

PaliGemmaConfig parse_config_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(where + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + " must hold a JSON object");
  const std::string type = get_or<std::string>(j, "model_type", "", where);
  if (type != "paligemma")
    throw Error(where + ": model_type is \"" + type + "\", expected \"paligemma\" (is this a PaliGemma checkpoint?)");
  PaliGemmaConfig c;
  c.image_token_id = get_or<int64_t>(j, "image_token_index", get_or<int64_t>(j, "image_token_id", 256000, where), where);
  const int64_t top_vocab = get_or<int64_t>(j, "vocab_size", 257152, where);
  const json* vj = j.contains("vision_config") && j["vision_config"].is_object() ? &j["vision_config"] : nullptr;
  const json* tj = j.contains("text_config") && j["text_config"].is_object() ? &j["text_config"] : nullptr;
  c.vision = parse_vision(vj, where);
  c.text = parse_text(tj, top_vocab, where);
  if (c.image_token_id < 0 || c.image_token_id >= c.text.vocab)
    throw Error(where + ": image_token_index " + std::to_string(c.image_token_id) + " is outside the vocabulary of " +
                std::to_string(c.text.vocab) + " rows");
  return c;
}

PaliGemmaConfig load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path + " (a model directory needs the hub's config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config_json(ss.str(), path);
}

}  // namespace pg
