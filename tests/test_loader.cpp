// Checkpoint loading: config defaults, safetensors parsing and its error paths, tensor binding.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <nlohmann/json.hpp>

#include "loader/checkpoint.h"
#include "loader/config_json.h"
#include "formats/safetensors.h"
#include "model/weights.h"
#include "paligemma/error.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::error_of;

// The hub's google/paligemma-3b-pt-224 config.json (keys as published; the rest are defaults).
const char* kPg1HubConfig = R"({
  "architectures": ["PaliGemmaForConditionalGeneration"], "bos_token_id": 2, "eos_token_id": 1,
  "hidden_size": 2048, "ignore_index": -100, "image_token_index": 257152, "model_type": "paligemma",
  "pad_token_id": 0, "projection_dim": 2048,
  "text_config": {"hidden_size": 2048, "intermediate_size": 16384, "model_type": "gemma",
    "num_attention_heads": 8, "num_hidden_layers": 18, "num_image_tokens": 256, "num_key_value_heads": 1,
    "torch_dtype": "float32", "vocab_size": 257216},
  "torch_dtype": "float32", "transformers_version": "4.41.0.dev0",
  "vision_config": {"hidden_size": 1152, "image_size": 224, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "num_image_tokens": 256, "patch_size": 14, "projection_dim": 2048, "projector_hidden_act": "gelu_fast",
    "vision_use_head": false}})";

// google/paligemma2-28b-pt-896 style config (query_pre_attn_scalar 144, head_dim 128).
const char* kPg2HubConfig = R"({
  "architectures": ["PaliGemmaForConditionalGeneration"], "image_token_index": 257152,
  "model_type": "paligemma", "projection_dim": 4608,
  "text_config": {"hidden_activation": "gelu_pytorch_tanh", "hidden_size": 4608, "intermediate_size": 36864,
    "model_type": "gemma2", "num_attention_heads": 32, "num_hidden_layers": 46, "num_key_value_heads": 16,
    "head_dim": 128, "query_pre_attn_scalar": 144, "sliding_window": 4096, "vocab_size": 257216},
  "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "patch_size": 14, "projection_dim": 4608, "vision_use_head": false}})";

TEST(Config, Pg1HubDefaults) {
  const PaliGemmaConfig c = parse_config_json(kPg1HubConfig, "config.json");
  EXPECT_EQ(c.image_token_id, 257152);
  EXPECT_EQ(c.text.arch, TextArch::Gemma);
  EXPECT_EQ(c.text.vocab, 257216);
  EXPECT_EQ(c.text.head_dim, 256);  // GemmaConfig default
  EXPECT_EQ(c.text.kv_heads, 1);
  EXPECT_FLOAT_EQ(c.text.query_pre_attn_scalar, 256.f);
  EXPECT_FLOAT_EQ(c.text.rope_theta, 10000.f);
  EXPECT_EQ(c.text.attn_softcap, 0.f);
  EXPECT_EQ(c.text.final_softcap, 0.f);
  EXPECT_EQ(c.text.sliding_window, 0);
  EXPECT_EQ(c.vision.tokens(), 256);
  EXPECT_EQ(c.vision.intermediate, 4304);
}

TEST(Config, Pg2HubDefaults) {
  const PaliGemmaConfig c = parse_config_json(kPg2HubConfig, "config.json");
  EXPECT_EQ(c.text.arch, TextArch::Gemma2);
  EXPECT_FLOAT_EQ(c.text.query_pre_attn_scalar, 144.f);
  EXPECT_FLOAT_EQ(c.text.attn_softcap, 50.f);   // Gemma2Config default
  EXPECT_FLOAT_EQ(c.text.final_softcap, 30.f);  // Gemma2Config default
  EXPECT_EQ(c.text.sliding_window, 4096);
  ASSERT_EQ(c.text.sliding_layers.size(), 46u);
  EXPECT_TRUE(c.text.sliding_layers[0]);
  EXPECT_FALSE(c.text.sliding_layers[1]);
  EXPECT_EQ(c.vision.tokens(), 4096);
}

TEST(Config, MissingSubConfigsTakePaliGemmaDefaults) {
  const PaliGemmaConfig c = parse_config_json(R"({"model_type": "paligemma"})", "config.json");
  EXPECT_EQ(c.text.layers, 18);
  EXPECT_EQ(c.text.vocab, 257152);
  EXPECT_EQ(c.vision.intermediate, 4096);  // transformers' PaliGemmaConfig default, not 4304
  EXPECT_EQ(c.image_token_id, 256000);
}

TEST(Config, RejectsWhatIsNotPaliGemma) {
  EXPECT_THROW(parse_config_json("{", "c.json"), Error);
  EXPECT_THROW(parse_config_json(R"({"model_type": "llama"})", "c.json"), Error);
  EXPECT_THROW(parse_config_json(R"({"model_type": "paligemma", "text_config": {"model_type": "gemma3"}})", "c"), Error);
  EXPECT_THROW(parse_config_json(R"({"model_type": "paligemma", "text_config": {"hidden_size": "big"}})", "c"), Error);
  EXPECT_THROW(parse_config_json(R"({"model_type": "paligemma", "vision_config": {"image_size": 225, "patch_size": 14}})", "c"), Error);
}

// The error parse_config_json gives for the PaliGemma 1 hub config after `edit`.
std::string config_error(const std::function<void(json&)>& edit) {
  json j = json::parse(kPg1HubConfig);
  edit(j);
  return error_of([&] { parse_config_json(j.dump(), "config.json"); });
}

// Values that would compute garbage are load errors naming the key, the value and what is allowed.
TEST(Config, RejectsValuesThatComputeGarbage) {
  struct Case {
    std::function<void(json&)> edit;
    std::vector<std::string> said;  // each must appear in the message
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["text_config"]["rope_theta"] = 0; }, {"\"rope_theta\" is 0", "above 0"}},
      {[](json& j) { j["text_config"]["rope_parameters"] = {{"rope_theta", -1.0}}; }, {"\"rope_theta\" is -1.0"}},
      {[](json& j) { j["text_config"]["rms_norm_eps"] = -1e-6; }, {"\"rms_norm_eps\" is -1e-06", "above 0"}},
      {[](json& j) { j["vision_config"]["layer_norm_eps"] = "small"; }, {"\"layer_norm_eps\" is \"small\""}},
      {[](json& j) { j["text_config"]["hidden_size"] = 2048.5; },
       {"\"hidden_size\" is 2048.5", "whole number from 1 to"}},
      {[](json& j) { j["vision_config"]["patch_size"] = 14.0; }, {"\"patch_size\" is 14.0", "whole number"}},
      {[](json& j) { j["text_config"]["num_image_tokens"] = 1024; },
       {"text_config \"num_image_tokens\" is 1024", "(image_size / patch_size)^2 is 256"}},
      {[](json& j) { j["vision_config"]["num_image_tokens"] = 255; }, {"vision_config \"num_image_tokens\" is 255"}},
      {[](json& j) { j["projection_dim"] = 1152; }, {"\"projection_dim\" is 1152", "text hidden_size is 2048"}},
      {[](json& j) { j["vision_config"]["projection_dim"] = 4096; }, {"vision_config \"projection_dim\" is 4096"}},
      {[](json& j) { j["eos_token_id"] = 300000; }, {"\"eos_token_id\" is 300000", "from 0 to 257215"}},
      {[](json& j) { j["text_config"]["eos_token_id"] = json::array({1, -1}); },
       {"text_config \"eos_token_id\" is [1,-1]"}},
      {[](json& j) { j["text_config"]["max_position_embeddings"] = 1000000000000; },
       {"\"max_position_embeddings\" is 1000000000000", "from 1 to 1048576"}},
      {[](json& j) { j["text_config"]["intermediate_size"] = 1152921504606846976; },
       {"\"intermediate_size\" is 1152921504606846976"}},
      {[](json& j) { j["text_config"]["num_hidden_layers"] = 0; }, {"\"num_hidden_layers\" is 0"}},
      {[](json& j) { j["image_token_index"] = -5; }, {"\"image_token_index\" is -5"}},
  };
  for (const Case& c : cases) {
    const std::string e = config_error(c.edit);
    for (const std::string& part : c.said) EXPECT_NE(e.find(part), std::string::npos) << e << "\n  lacks: " << part;
    EXPECT_EQ(e.find("config.json"), 0u) << e;
  }
  EXPECT_EQ(config_error([](json&) {}), "no error");
}

// Gemma 2: an absent soft-cap or window takes Gemma2Config's default; null turns it off, as in transformers.
TEST(Config, NullSoftcapsAndWindowMeanNone) {
  json j = json::parse(kPg2HubConfig);
  j["text_config"]["attn_logit_softcapping"] = nullptr;
  j["text_config"]["final_logit_softcapping"] = nullptr;
  j["text_config"]["sliding_window"] = nullptr;
  const PaliGemmaConfig c = parse_config_json(j.dump(), "config.json");
  EXPECT_EQ(c.text.attn_softcap, 0.f);
  EXPECT_EQ(c.text.final_softcap, 0.f);
  EXPECT_EQ(c.text.sliding_window, 0);
}

TEST(Checkpoint, CanonicalNames) {
  EXPECT_EQ(canonical_tensor_name("model.language_model.layers.0.mlp.up_proj.weight"),
            "language_model.model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ(canonical_tensor_name("model.vision_tower.vision_model.post_layernorm.bias"),
            "vision_tower.vision_model.post_layernorm.bias");
  EXPECT_EQ(canonical_tensor_name("model.vision_tower.embeddings.patch_embedding.bias"),
            "vision_tower.vision_model.embeddings.patch_embedding.bias");
  EXPECT_EQ(canonical_tensor_name("vision_tower.encoder.layers.3.mlp.fc1.weight"),
            "vision_tower.vision_model.encoder.layers.3.mlp.fc1.weight");
  EXPECT_EQ(canonical_tensor_name("model.multi_modal_projector.linear.weight"), "multi_modal_projector.linear.weight");
  EXPECT_EQ(canonical_tensor_name("lm_head.weight"), "language_model.lm_head.weight");
  EXPECT_EQ(canonical_tensor_name("language_model.model.norm.weight"), "language_model.model.norm.weight");
}

// Writes a safetensors file from (name, dtype, shape, byte count) entries; `cut` drops trailing bytes.
void write_safetensors(const fs::path& path, const std::vector<std::tuple<std::string, std::string, std::vector<int64_t>, size_t>>& entries,
                       size_t cut = 0, const std::string& raw_header = "") {
  json h = json::object();
  size_t offset = 0;
  for (const auto& [name, dtype, shape, bytes] : entries) {
    h[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  const std::string header = raw_header.empty() ? h.dump() : raw_header;
  std::string data(offset, '\x01');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << header;
  out.write(data.data(), std::streamsize(data.size() - cut));
}

class SafetensorsErrors : public ::testing::Test {
 protected:
  test::TempDir tmp;
  const fs::path& dir = tmp.path();
};

TEST_F(SafetensorsErrors, ReadsValidFile) {
  write_safetensors(dir / "a.safetensors", {{"w", "BF16", {2, 3}, 12}, {"b", "F32", {3}, 12}});
  auto c = SafetensorsCollection::open_directory(dir.string());
  ASSERT_EQ(c.tensors().size(), 2u);
  EXPECT_EQ(c.tensors().at("w").dtype, DType::BF16);
  EXPECT_EQ(c.tensors().at("w").shape, (std::vector<int64_t>{2, 3}));
}

TEST_F(SafetensorsErrors, TruncatedDataNamesTheTensor) {
  write_safetensors(dir / "a.safetensors", {{"first", "F32", {4}, 16}, {"second", "F32", {4}, 16}}, 5);
  const std::string e = error_of([&] { SafetensorsCollection::open_directory(dir.string()); });
  EXPECT_NE(e.find("second"), std::string::npos) << e;
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST_F(SafetensorsErrors, CorruptHeaders) {
  write_safetensors(dir / "a.safetensors", {}, 0, "{not json");
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("corrupt"), std::string::npos);
  std::ofstream(dir / "a.safetensors", std::ios::binary) << "abc";
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("not a safetensors"), std::string::npos);
  std::ofstream(dir / "a.safetensors", std::ios::binary) << std::string("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10);
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("header length"), std::string::npos);
}

TEST_F(SafetensorsErrors, WrongByteCountAndDtype) {
  write_safetensors(dir / "a.safetensors", {{"w", "F32", {2, 3}, 20}});
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("needs 24"), std::string::npos);
  write_safetensors(dir / "a.safetensors", {{"w", "I32", {2}, 8}});
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("I32"), std::string::npos);
}

// A shape whose byte count overflows 64 bits must not pass the size check by wrapping to the bytes given.
TEST_F(SafetensorsErrors, OverflowingShape) {
  write_safetensors(dir / "a.safetensors", {{"w", "F32", {int64_t{1} << 60, 64}, 0}});
  const std::string e = error_of([&] { SafetensorsCollection::open_directory(dir.string()); });
  EXPECT_NE(e.find("tensor w has shape [1152921504606846976, 64], whose size overflows"), std::string::npos) << e;
}

TEST_F(SafetensorsErrors, ShardIndex) {
  write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", "F32", {1}, 4}});
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
  std::string e = error_of([&] { SafetensorsCollection::open_directory(dir.string()); });
  EXPECT_NE(e.find("model-00002-of-00002.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"c", "F32", {1}, 4}});
  e = error_of([&] { SafetensorsCollection::open_directory(dir.string()); });
  EXPECT_NE(e.find("tensor b"), std::string::npos) << e;
  std::ofstream(dir / "model.safetensors.index.json") << "[";
  EXPECT_NE(error_of([&] { SafetensorsCollection::open_directory(dir.string()); }).find("not valid JSON"), std::string::npos);
}

TEST_F(SafetensorsErrors, MissingDirectoryAndFiles) {
  EXPECT_NE(error_of([&] { Checkpoint((dir / "nope").string()); }).find("does not exist"), std::string::npos);
  EXPECT_NE(error_of([&] { Checkpoint(dir.string()); }).find("config.json"), std::string::npos);
  std::ofstream(dir / "config.json") << kPg1HubConfig;
  EXPECT_NE(error_of([&] { Checkpoint(dir.string()); }).find("tokenizer.model"), std::string::npos);
  std::ofstream(dir / "tokenizer.model") << "x";
  EXPECT_NE(error_of([&] { Checkpoint(dir.string()); }).find("safetensors"), std::string::npos);
}

// A complete, all-zero tensor set for a config, to exercise bind_weights' checks.
struct FakeCheckpoint {
  std::map<std::string, StoredTensor> tensors;
  std::vector<float> zeros = std::vector<float>(1 << 16, 0.f);
  void add(const std::string& name, std::vector<int64_t> shape) { tensors[name] = StoredTensor{DType::F32, shape, zeros.data()}; }
  TensorLookup lookup() const {
    return [this](const std::string& n) -> const StoredTensor* {
      auto it = tensors.find(n);
      return it == tensors.end() ? nullptr : &it->second;
    };
  }
};

FakeCheckpoint fake_for(const PaliGemmaConfig& c) {
  FakeCheckpoint f;
  const auto& v = c.vision;
  const std::string vp = "vision_tower.vision_model.";
  f.add(vp + "embeddings.patch_embedding.weight", {v.hidden, 3, v.patch_size, v.patch_size});
  f.add(vp + "embeddings.patch_embedding.bias", {v.hidden});
  f.add(vp + "embeddings.position_embedding.weight", {v.tokens(), v.hidden});
  for (int64_t i = 0; i < v.layers; ++i) {
    const std::string p = vp + "encoder.layers." + std::to_string(i) + ".";
    for (const char* n : {"layer_norm1", "layer_norm2"}) f.add(p + n + ".weight", {v.hidden}), f.add(p + n + ".bias", {v.hidden});
    for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"})
      f.add(p + "self_attn." + n + ".weight", {v.hidden, v.hidden}), f.add(p + "self_attn." + n + ".bias", {v.hidden});
    f.add(p + "mlp.fc1.weight", {v.intermediate, v.hidden}), f.add(p + "mlp.fc1.bias", {v.intermediate});
    f.add(p + "mlp.fc2.weight", {v.hidden, v.intermediate}), f.add(p + "mlp.fc2.bias", {v.hidden});
  }
  f.add(vp + "post_layernorm.weight", {v.hidden}), f.add(vp + "post_layernorm.bias", {v.hidden});
  const auto& t = c.text;
  f.add("multi_modal_projector.linear.weight", {t.hidden, v.hidden});
  f.add("multi_modal_projector.linear.bias", {t.hidden});
  f.add("language_model.model.embed_tokens.weight", {t.vocab, t.hidden});
  f.add("language_model.model.norm.weight", {t.hidden});
  for (int64_t i = 0; i < t.layers; ++i) {
    const std::string p = "language_model.model.layers." + std::to_string(i) + ".";
    f.add(p + "input_layernorm.weight", {t.hidden});
    f.add(p + "post_attention_layernorm.weight", {t.hidden});
    f.add(p + "self_attn.q_proj.weight", {t.heads * t.head_dim, t.hidden});
    f.add(p + "self_attn.k_proj.weight", {t.kv_heads * t.head_dim, t.hidden});
    f.add(p + "self_attn.v_proj.weight", {t.kv_heads * t.head_dim, t.hidden});
    f.add(p + "self_attn.o_proj.weight", {t.hidden, t.heads * t.head_dim});
    f.add(p + "mlp.gate_proj.weight", {t.intermediate, t.hidden});
    f.add(p + "mlp.up_proj.weight", {t.intermediate, t.hidden});
    f.add(p + "mlp.down_proj.weight", {t.hidden, t.intermediate});
  }
  return f;
}

PaliGemmaConfig tiny_config() {
  return parse_config_json(R"({"model_type": "paligemma", "image_token_index": 40,
    "text_config": {"model_type": "gemma", "vocab_size": 64, "hidden_size": 8, "intermediate_size": 12,
      "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4},
    "vision_config": {"hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 1,
      "num_attention_heads": 2, "image_size": 28, "patch_size": 14}})", "tiny");
}

TEST(BindWeights, AcceptsCompleteSet) {
  const PaliGemmaConfig c = tiny_config();
  const FakeCheckpoint f = fake_for(c);
  const ModelWeights w = bind_weights(c, f.lookup());
  EXPECT_EQ(w.text_layers.size(), 2u);
  EXPECT_EQ(w.patch_embedding.weight.cols(), 3 * 14 * 14);
}

TEST(BindWeights, MissingTensorIsNamed) {
  const PaliGemmaConfig c = tiny_config();
  FakeCheckpoint f = fake_for(c);
  f.tensors.erase("language_model.model.layers.1.mlp.up_proj.weight");
  try {
    bind_weights(c, f.lookup());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("language_model.model.layers.1.mlp.up_proj.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("[12, 8]"), std::string::npos) << e.what();
  }
}

TEST(BindWeights, MisshapedTensorSaysExpectedAndGot) {
  const PaliGemmaConfig c = tiny_config();
  FakeCheckpoint f = fake_for(c);
  f.add("language_model.model.layers.0.self_attn.k_proj.weight", {8, 8});
  try {
    bind_weights(c, f.lookup());
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("k_proj"), std::string::npos);
    EXPECT_NE(m.find("has shape [8, 8], expected [4, 8]"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace pg
