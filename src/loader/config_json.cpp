#include "loader/config_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "paligemma/error.h"

namespace pg {

using nlohmann::json;

namespace {

// Reads key as T when present and not null, else returns fallback; a value of the wrong type is an error.
template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(where + ": \"" + key + "\" has the wrong type (" + it->dump() + ")");
  }
}

// A size or count: a whole number from lo to hi (a fractional or out-of-range value would size tensors the
// weights cannot have, or overflow the arithmetic sized by it).
int64_t get_count(const json& j, const char* key, int64_t fallback, int64_t lo, int64_t hi, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  const bool whole = it->is_number_integer() && !(it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX));
  if (!whole || it->get<int64_t>() < lo || it->get<int64_t>() > hi)
    throw Error(where + ": \"" + key + "\" is " + it->dump() + "; it must be a whole number from " +
                std::to_string(lo) + " to " + std::to_string(hi));
  return it->get<int64_t>();
}

// A dimension of the network: at least 1, small enough that products of two stay far from overflow.
constexpr int64_t kMaxDimension = int64_t{1} << 31;

// A real-valued hyper-parameter: finite, and > 0 (positive) or >= 0 (non-negative).
enum class Sign { Positive, NonNegative };
float get_real(const json& j, const char* key, float fallback, Sign sign, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  const double v = it->is_number() ? it->get<double>() : std::nan("");
  const bool ok = std::isfinite(v) && std::isfinite(float(v)) && (sign == Sign::Positive ? v > 0 : v >= 0);
  if (!ok)
    throw Error(where + ": \"" + key + "\" is " + it->dump() + "; it must be a finite number " +
                (sign == Sign::Positive ? "above 0" : "of 0 or more"));
  return float(v);
}

// Token ids the config names (eos_token_id may be one id or a list) must be rows of the vocabulary.
void check_token_ids(const json& j, const std::string& scope, int64_t vocab, const std::string& where) {
  for (const char* key : {"eos_token_id", "bos_token_id", "pad_token_id"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    const json ids = it->is_array() ? *it : json::array({*it});
    for (const json& id : ids)
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab)
        throw Error(where + ": " + scope + "\"" + key + "\" is " + it->dump() +
                    "; token ids must be whole numbers from 0 to " + std::to_string(vocab - 1) +
                    " (the vocabulary's rows)");
  }
}

VisionConfig parse_vision(const json* j, const std::string& where) {
  VisionConfig v;
  if (!j) {
    // PaliGemmaConfig's own default vision tower (transformers configuration_paligemma.py).
    v.hidden = 1152; v.intermediate = 4096; v.layers = 27; v.heads = 16; v.image_size = 224; v.patch_size = 14;
    return v;
  }
  // SiglipVisionConfig defaults.
  v.hidden = get_count(*j, "hidden_size", 768, 1, kMaxDimension, where);
  v.intermediate = get_count(*j, "intermediate_size", 3072, 1, kMaxDimension, where);
  v.layers = get_count(*j, "num_hidden_layers", 12, 1, 4096, where);
  v.heads = get_count(*j, "num_attention_heads", 12, 1, kMaxDimension, where);
  v.channels = get_count(*j, "num_channels", 3, 3, 3, where);
  v.image_size = get_count(*j, "image_size", 224, 1, 16384, where);
  v.patch_size = get_count(*j, "patch_size", 16, 1, 16384, where);
  v.layer_norm_eps = get_real(*j, "layer_norm_eps", 1e-6f, Sign::Positive, where);
  const std::string act = get_or<std::string>(*j, "hidden_act", "gelu_pytorch_tanh", where);
  if (act != "gelu_pytorch_tanh" && act != "gelu_new" && act != "gelu_fast")
    throw Error(where + ": vision hidden_act \"" + act + "\" is not supported (PaliGemma uses gelu_pytorch_tanh)");
  if (get_or<bool>(*j, "vision_use_head", false, where))
    throw Error(where + ": vision_use_head=true is not a PaliGemma vision tower");
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
    t.vocab = get_count(*j, "vocab_size", 256000, 1, kMaxDimension, where);
    t.hidden = get_count(*j, "hidden_size", 3072, 1, kMaxDimension, where);
    t.intermediate = get_count(*j, "intermediate_size", 24576, 1, kMaxDimension, where);
    t.layers = get_count(*j, "num_hidden_layers", 28, 1, 4096, where);
    t.heads = get_count(*j, "num_attention_heads", 16, 1, kMaxDimension, where);
    t.kv_heads = get_count(*j, "num_key_value_heads", 16, 1, kMaxDimension, where);
    t.head_dim = get_count(*j, "head_dim", 256, 1, kMaxDimension, where);
    t.query_pre_attn_scalar = float(t.head_dim);
  } else if (type == "gemma2") {
    t.arch = TextArch::Gemma2;
    t.vocab = get_count(*j, "vocab_size", 256000, 1, kMaxDimension, where);
    t.hidden = get_count(*j, "hidden_size", 2304, 1, kMaxDimension, where);
    t.intermediate = get_count(*j, "intermediate_size", 9216, 1, kMaxDimension, where);
    t.layers = get_count(*j, "num_hidden_layers", 26, 1, 4096, where);
    t.heads = get_count(*j, "num_attention_heads", 8, 1, kMaxDimension, where);
    t.kv_heads = get_count(*j, "num_key_value_heads", 4, 1, kMaxDimension, where);
    t.head_dim = get_count(*j, "head_dim", 256, 1, kMaxDimension, where);
    t.query_pre_attn_scalar = get_real(*j, "query_pre_attn_scalar", 256.f, Sign::Positive, where);
    // Gemma2Config's defaults apply to absent keys; null turns the feature off, as in transformers.
    const auto is_null = [&](const char* key) { return j->contains(key) && (*j)[key].is_null(); };
    t.attn_softcap = is_null("attn_logit_softcapping") ? 0.f
                     : get_real(*j, "attn_logit_softcapping", 50.f, Sign::NonNegative, where);
    t.final_softcap = is_null("final_logit_softcapping") ? 0.f
                      : get_real(*j, "final_logit_softcapping", 30.f, Sign::NonNegative, where);
    t.sliding_window = is_null("sliding_window") ? 0 : get_count(*j, "sliding_window", 4096, 1, kMaxDimension, where);
  } else {
    throw Error(where + ": text_config model_type \"" + type + "\" is not supported (expected gemma or gemma2)");
  }
  t.rms_norm_eps = get_real(*j, "rms_norm_eps", 1e-6f, Sign::Positive, where);
  t.max_positions = get_count(*j, "max_position_embeddings", 8192, 1, int64_t{1} << 20, where);
  t.rope_theta = get_real(*j, "rope_theta", 10000.f, Sign::Positive, where);
  if (auto rp = j->find("rope_parameters"); rp != j->end() && rp->is_object())
    t.rope_theta = get_real(*rp, "rope_theta", t.rope_theta, Sign::Positive, where);
  const std::string act = get_or<std::string>(*j, "hidden_activation",
                                              get_or<std::string>(*j, "hidden_act", "gelu_pytorch_tanh", where), where);
  if (act != "gelu_pytorch_tanh" && act != "gelu" && act != "gelu_new")
    throw Error(where + ": text hidden activation \"" + act + "\" is not supported (Gemma uses gelu_pytorch_tanh)");
  if (t.head_dim % 2) throw Error(where + ": text head_dim must be even for rotary embeddings");
  if (t.heads % t.kv_heads) throw Error(where + ": num_attention_heads must be a multiple of num_key_value_heads");
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
  c.image_token_id = get_count(j, "image_token_index", get_count(j, "image_token_id", 256000, 0, kMaxDimension, where),
                               0, kMaxDimension, where);
  const int64_t top_vocab = get_count(j, "vocab_size", 257152, 1, kMaxDimension, where);
  const json* vj = j.contains("vision_config") && j["vision_config"].is_object() ? &j["vision_config"] : nullptr;
  const json* tj = j.contains("text_config") && j["text_config"].is_object() ? &j["text_config"] : nullptr;
  c.vision = parse_vision(vj, where);
  c.text = parse_text(tj, top_vocab, where);
  if (c.image_token_id < 0 || c.image_token_id >= c.text.vocab)
    throw Error(where + ": image_token_index " + std::to_string(c.image_token_id) + " is outside the vocabulary of " +
                std::to_string(c.text.vocab) + " rows");
  // Keys the model does not size itself by, but that must agree with what it is: transformers builds the
  // projector from projection_dim, and num_image_tokens is the image's share of the prompt.
  const auto check_equal = [&](const json* scope, const std::string& scope_name, const char* key, int64_t actual,
                               const std::string& what) {
    if (!scope) return;
    auto it = scope->find(key);
    if (it == scope->end() || it->is_null()) return;
    if (!it->is_number_integer() || it->get<int64_t>() != actual)
      throw Error(where + ": " + scope_name + "\"" + key + "\" is " + it->dump() + " but " + what + " is " +
                  std::to_string(actual));
  };
  const std::string tokens_what = "(image_size / patch_size)^2";
  check_equal(tj, "text_config ", "num_image_tokens", c.vision.tokens(), tokens_what);
  check_equal(vj, "vision_config ", "num_image_tokens", c.vision.tokens(), tokens_what);
  check_equal(&j, "", "projection_dim", c.text.hidden, "the text hidden_size");
  check_equal(vj, "vision_config ", "projection_dim", c.text.hidden, "the text hidden_size");
  check_token_ids(j, "", c.text.vocab, where);
  if (tj) check_token_ids(*tj, "text_config ", c.text.vocab, where);
  return c;
}

PaliGemmaConfig load_config_file(const std::string& path) {
  return parse_config_json(read_regular_file(path, "model config"), path);
}

}  // namespace pg
