#include "model/weights.h"

#include <map>

#include "core/shape.h"
#include "paligemma/error.h"

namespace pg {
namespace {

class Binder {
 public:
  explicit Binder(const TensorLookup& lookup) : lookup_(lookup) {}

  const StoredTensor& get(const std::string& name, const std::vector<int64_t>& expected) {
    const StoredTensor* t = lookup_(name);
    if (!t) throw Error("checkpoint is missing tensor " + name + " (expected shape " + shape_to_string(expected) + ")");
    if (t->shape != expected)
      throw Error("tensor " + name + " has shape " + shape_to_string(t->shape) + ", expected " + shape_to_string(expected) +
                  " from config.json (does the config match the weights?)");
    if (!t->quant) dtypes_[t->dtype] += 1;  // quantized weights say nothing about the activation dtype
    return *t;
  }

  // A tensor the engine needs in f32/bf16/f16.
  const StoredTensor& get_plain(const std::string& name, const std::vector<int64_t>& expected) {
    const StoredTensor& t = get(name, expected);
    if (t.quant)
      throw Error("tensor " + name + " is stored " + quant_type_name(*t.quant) +
                  ", but the engine reads it only in f32, bf16 or f16 (re-create the file with paligemma quantize)");
    return t;
  }

  MatrixView matrix(const std::string& name, int64_t rows, int64_t cols) {
    const StoredTensor& t = get_plain(name, {rows, cols});
    return MatrixView{t.data, t.dtype, rows, cols};
  }

  // A matrix that may be block-quantized.
  Weight weight(const std::string& name, int64_t rows, int64_t cols) {
    const StoredTensor& t = get(name, {rows, cols});
    if (t.quant) return QuantMatrix{t.data, *t.quant, rows, cols};
    return MatrixView{t.data, t.dtype, rows, cols};
  }

  std::vector<float> vector(const std::string& name, int64_t n) {
    const StoredTensor& t = get_plain(name, {n});
    std::vector<float> v(static_cast<size_t>(n));
    to_f32(t.data, t.dtype, v.data(), size_t(n));
    return v;
  }

  Linear linear(const std::string& prefix, int64_t out, int64_t in, bool bias) {
    Linear l;
    l.weight = weight(prefix + ".weight", out, in);
    if (bias) l.bias = vector(prefix + ".bias", out);
    return l;
  }

  // The dtype most tensors are stored in: the reference computes activations in it.
  DType majority_dtype() const {
    DType best = DType::F32;
    int most = -1;
    for (const auto& [d, n] : dtypes_)
      if (n > most) best = d, most = n;
    return best;
  }

 private:
  const TensorLookup& lookup_;
  std::map<DType, int> dtypes_;
};

}  // namespace

ModelWeights bind_weights(const PaliGemmaConfig& c, const TensorLookup& lookup) {
  Binder b(lookup);
  ModelWeights w;
  const VisionConfig& v = c.vision;
  const std::string vp = "vision_tower.vision_model.";
  {
    const int64_t patch_in = v.channels * v.patch_size * v.patch_size;
    const StoredTensor& conv =
        b.get_plain(vp + "embeddings.patch_embedding.weight", {v.hidden, v.channels, v.patch_size, v.patch_size});
    // OIHW is row-major [out, (c, ky, kx)]: the conv is a matmul over flattened patches.
    w.patch_embedding.weight = MatrixView{conv.data, conv.dtype, v.hidden, patch_in};
    w.patch_embedding.bias = b.vector(vp + "embeddings.patch_embedding.bias", v.hidden);
  }
  w.position_embedding = b.matrix(vp + "embeddings.position_embedding.weight", v.tokens(), v.hidden);
  for (int64_t i = 0; i < v.layers; ++i) {
    const std::string p = vp + "encoder.layers." + std::to_string(i) + ".";
    VisionLayer L;
    L.ln1_w = b.vector(p + "layer_norm1.weight", v.hidden);
    L.ln1_b = b.vector(p + "layer_norm1.bias", v.hidden);
    L.ln2_w = b.vector(p + "layer_norm2.weight", v.hidden);
    L.ln2_b = b.vector(p + "layer_norm2.bias", v.hidden);
    L.q = b.linear(p + "self_attn.q_proj", v.hidden, v.hidden, true);
    L.k = b.linear(p + "self_attn.k_proj", v.hidden, v.hidden, true);
    L.v = b.linear(p + "self_attn.v_proj", v.hidden, v.hidden, true);
    L.o = b.linear(p + "self_attn.out_proj", v.hidden, v.hidden, true);
    L.fc1 = b.linear(p + "mlp.fc1", v.intermediate, v.hidden, true);
    L.fc2 = b.linear(p + "mlp.fc2", v.hidden, v.intermediate, true);
    w.vision_layers.push_back(std::move(L));
  }
  w.post_ln_w = b.vector(vp + "post_layernorm.weight", v.hidden);
  w.post_ln_b = b.vector(vp + "post_layernorm.bias", v.hidden);

  const TextConfig& t = c.text;
  w.projector = b.linear("multi_modal_projector.linear", t.hidden, v.hidden, true);
  const std::string tp = "language_model.model.";
  w.embed_tokens = b.weight(tp + "embed_tokens.weight", t.vocab, t.hidden);
  const int64_t q_dim = t.heads * t.head_dim, kv_dim = t.kv_heads * t.head_dim;
  for (int64_t i = 0; i < t.layers; ++i) {
    const std::string p = tp + "layers." + std::to_string(i) + ".";
    TextLayer L;
    L.input_norm = b.vector(p + "input_layernorm.weight", t.hidden);
    L.post_attention_norm = b.vector(p + "post_attention_layernorm.weight", t.hidden);
    if (t.arch == TextArch::Gemma2) {
      L.pre_ffn_norm = b.vector(p + "pre_feedforward_layernorm.weight", t.hidden);
      L.post_ffn_norm = b.vector(p + "post_feedforward_layernorm.weight", t.hidden);
    }
    L.q = b.linear(p + "self_attn.q_proj", q_dim, t.hidden, false);
    L.k = b.linear(p + "self_attn.k_proj", kv_dim, t.hidden, false);
    L.v = b.linear(p + "self_attn.v_proj", kv_dim, t.hidden, false);
    L.o = b.linear(p + "self_attn.o_proj", t.hidden, q_dim, false);
    L.gate = b.linear(p + "mlp.gate_proj", t.intermediate, t.hidden, false);
    L.up = b.linear(p + "mlp.up_proj", t.intermediate, t.hidden, false);
    L.down = b.linear(p + "mlp.down_proj", t.hidden, t.intermediate, false);
    w.text_layers.push_back(std::move(L));
  }
  w.final_norm = b.vector(tp + "norm.weight", t.hidden);
  w.compute_dtype = b.majority_dtype();
  return w;
}

}  // namespace pg
