// PaliGemma's forward pass, block by block as transformers computes it:
//   SigLIP vision tower     transformers/models/siglip/modeling_siglip.py
//   projector, prompt       transformers/models/paligemma/modeling_paligemma.py
//   Gemma / Gemma 2 decoder transformers/models/gemma/modeling_gemma.py, gemma2/modeling_gemma2.py
// Activations are float32 rows in the call's Workspace; with reference rounding on, each result the
// reference produces in the checkpoint's dtype (bf16/f16) is rounded to it at the same point (round_act,
// and inside linear, the norms and the kernels' `act` arguments).
#include "model/paligemma.h"

#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "paligemma/error.h"

namespace pg {
namespace {

// The workspace a call computes in: the one given, else `fallback`.
Workspace& pick(Workspace* given, Workspace& fallback) { return given ? *given : fallback; }

}  // namespace

KVCache::KVCache(const TextConfig& c, int64_t capacity)
    : capacity_(capacity), kv_dim_(c.kv_heads * c.head_dim) {
  k_.resize(size_t(c.layers));
  v_.resize(size_t(c.layers));
  for (int64_t l = 0; l < c.layers; ++l) {
    k_[size_t(l)].resize(size_t(capacity * kv_dim_));
    v_[size_t(l)].resize(size_t(capacity * kv_dim_));
  }
}

PaliGemmaModel::PaliGemmaModel(PaliGemmaConfig config, ModelWeights weights, ModelOptions options)
    : config_(std::move(config)), w_(std::move(weights)), options_(options) {
  // transformers' GemmaScaledWordEmbedding multiplies by sqrt(hidden) cast to the weight dtype
  // (modeling_gemma.py: embed_scale.to(self.weight.dtype)).
  normalizer_ = round_to_dtype(std::sqrt(float(config_.text.hidden)), w_.compute_dtype);
  act_ = options_.reference_rounding ? w_.compute_dtype : DType::F32;
}

void PaliGemmaModel::linear(const Linear& L, const float* x, int64_t rows, float* y, Rows mode) const {
  pg::linear(x, rows, L.weight, L.bias.empty() ? nullptr : L.bias.data(), y, mode);
  round_act(y, rows * L.weight.rows());
}

void PaliGemmaModel::add_residual(float* x, const float* h, int64_t n) const {
  add_inplace(x, h, n);
  round_act(x, n);
}

void PaliGemmaModel::gemma_rms_norm(const float* x, int64_t rows, const std::vector<float>& w, float* y) const {
  const int64_t H = config_.text.hidden;
  rms_norm(x, rows, H, w.data(), 1.f, config_.text.rms_norm_eps, y);
  round_act(y, rows * H);
}

void PaliGemmaModel::siglip_layer_norm(const float* x, int64_t rows, const std::vector<float>& w,
                                       const std::vector<float>& b, float* y) const {
  const int64_t D = config_.vision.hidden;
  layer_norm(x, rows, D, w.data(), b.data(), config_.vision.layer_norm_eps, y);
  round_act(y, rows * D);
}

// SiglipEncoderLayer, pre-norm, over the n patch tokens of one image:
//   x = x + out_proj(attention(LN1(x)))        every patch sees every patch
//   x = x + fc2(gelu_tanh(fc1(LN2(x))))
void PaliGemmaModel::vision_layer(const VisionLayer& L, float* x, int64_t n, Workspace& ws) const {
  const VisionConfig& c = config_.vision;
  const int64_t D = c.hidden, I = c.intermediate;
  Workspace::Frame frame(ws);
  float* h = ws.floats(size_t(n * D));  // h: [n, D]
  float* q = ws.floats(size_t(n * D));  // q, k, v, a: [n, heads * head_dim = D]
  float* k = ws.floats(size_t(n * D));
  float* v = ws.floats(size_t(n * D));
  float* a = ws.floats(size_t(n * D));
  float* m = ws.floats(size_t(n * I));  // m: [n, I]

  // Attention: q, k, v = h·Wᵀ + b; a = softmax(q·kᵀ / √head_dim)·v per head.
  siglip_layer_norm(x, n, L.ln1_w, L.ln1_b, h);
  linear(L.q, h, n, q);
  linear(L.k, h, n, k);
  linear(L.v, h, n, v);
  AttentionShape s;
  s.n_heads = c.heads;
  s.n_kv_heads = c.heads;
  s.head_dim = D / c.heads;
  s.scale = 1.0f / std::sqrt(float(s.head_dim));
  s.prefix_len = n;
  s.act = act_;
  attention(q, n, 0, k, v, n, s, a);
  linear(L.o, a, n, h);
  add_residual(x, h, n * D);

  // MLP: m = gelu_tanh(h·W1ᵀ + b1); h = m·W2ᵀ + b2.
  siglip_layer_norm(x, n, L.ln2_w, L.ln2_b, h);
  linear(L.fc1, h, n, m);
  gelu_tanh(m, n * I);
  round_act(m, n * I);
  linear(L.fc2, m, n, h);
  add_residual(x, h, n * D);
}

// SiglipVisionTransformer: x = patch_embedding(pixels) + position_embedding, the encoder layers, then
// post_layernorm. pixels: [3, S, S] -> x: [N = (S / P)², D].
std::vector<float> PaliGemmaModel::vision_features(const float* pixels, Workspace* workspace) const {
  const VisionConfig& c = config_.vision;
  const int64_t S = c.image_size, P = c.patch_size, G = c.patches_per_side(), N = c.tokens(), D = c.hidden;
  const int64_t patch_len = c.channels * P * P;
  Workspace local;
  Workspace& ws = pick(workspace, local);
  Workspace::Frame frame(ws);

  // The P×P stride-P convolution is a linear layer over flattened patches in the conv weight's
  // (channel, ky, kx) order; token index = row * G + col. patches: [N, 3·P·P]
  float* patches = ws.floats(size_t(N * patch_len));
  for (int64_t r = 0; r < G; ++r)
    for (int64_t col = 0; col < G; ++col) {
      float* dst = patches + (r * G + col) * patch_len;
      for (int64_t ch = 0; ch < c.channels; ++ch)
        for (int64_t ky = 0; ky < P; ++ky)
          for (int64_t kx = 0; kx < P; ++kx) *dst++ = pixels[(ch * S + r * P + ky) * S + col * P + kx];
    }
  round_act(patches, N * patch_len);  // the reference casts pixel values to the patch embedding's dtype

  std::vector<float> x(size_t(N * D));  // x: [N, D], the residual stream
  linear(w_.patch_embedding, patches, N, x.data());
  float* position = ws.floats(size_t(D));
  for (int64_t t = 0; t < N; ++t) {
    weight_row_f32(w_.position_embedding, t, position);
    add_inplace(x.data() + t * D, position, D);
  }
  round_act(x.data(), N * D);

  for (const VisionLayer& L : w_.vision_layers) vision_layer(L, x.data(), N, ws);
  siglip_layer_norm(x.data(), N, w_.post_ln_w, w_.post_ln_b, x.data());
  return x;
}

// PaliGemmaMultiModalProjector: e = features·Wᵀ + b. features: [N, vision hidden] -> e: [N, text hidden]
std::vector<float> PaliGemmaModel::image_embeddings(const float* pixels, Workspace* workspace) const {
  const std::vector<float> features = vision_features(pixels, workspace);
  const int64_t N = config_.vision.tokens();
  std::vector<float> e(size_t(N * config_.text.hidden));
  linear(w_.projector, features.data(), N, e.data());
  return e;
}

// GemmaScaledWordEmbedding: row = embed_tokens[id] · normalizer. row: [H]
void PaliGemmaModel::embed_token_into(int32_t id, float* row) const {
  const int64_t H = config_.text.hidden;
  if (id < 0 || id >= config_.text.vocab)
    throw Error("token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                std::to_string(config_.text.vocab));
  weight_row_f32(w_.embed_tokens, id, row);
  scale_inplace(row, H, normalizer_);
  round_act(row, H);
}

std::vector<float> PaliGemmaModel::embed_token(int32_t id) const {
  std::vector<float> row(size_t(config_.text.hidden));
  embed_token_into(id, row.data());
  return row;
}

// x: [T, H]; row t is the scaled embedding of ids[t], or at image placeholders the next image row.
std::vector<float> PaliGemmaModel::embed_prompt(const std::vector<int32_t>& ids,
                                                const std::vector<float>& image_rows) const {
  const int64_t H = config_.text.hidden;
  const int64_t T = int64_t(ids.size());
  std::vector<float> x(size_t(T * H));
  int64_t next_image_row = 0;
  const int64_t image_row_count = int64_t(image_rows.size()) / H;
  for (int64_t t = 0; t < T; ++t) {
    float* dst = x.data() + t * H;
    if (ids[size_t(t)] != config_.image_token_id) {
      embed_token_into(ids[size_t(t)], dst);
      continue;
    }
    if (next_image_row >= image_row_count) throw Error("the prompt has more image placeholders than image features");
    // transformers 5.x scatters the projector output unscaled over the scaled text embeddings
    // (modeling_paligemma.py get_image_features / masked_scatter), like big_vision.
    std::copy_n(image_rows.data() + next_image_row * H, H, dst);
    ++next_image_row;
  }
  if (next_image_row != image_row_count)
    throw Error("the prompt has " + std::to_string(next_image_row) + " image placeholders for " +
                std::to_string(image_row_count) + " image feature rows");
  return x;
}

// GemmaDecoderLayer / Gemma2DecoderLayer over the rows of several sequences (x: [total, H]):
//   Gemma:   x = x + o(attention(norm_in(x)))            x = x + mlp(norm_post_attn(x))
//   Gemma 2: x = x + norm_post_attn(o(attention(norm_in(x))))
//            x = x + norm_post_ffn(mlp(norm_pre_ffn(x)))
// with mlp(h) = down(gelu_tanh(gate(h)) ⊙ up(h)) and attention over each sequence's cached keys and values
// under the prefix-LM mask (Gemma 2: soft-capped scores; sliding window on alternate layers).
void PaliGemmaModel::text_layer(int64_t index, const std::vector<SequenceRows>& seqs, const int64_t* positions,
                                float* x, int64_t total, Rows mode, Workspace& ws) const {
  const TextConfig& t = config_.text;
  const TextLayer& L = w_.text_layers[size_t(index)];
  const bool gemma2 = t.arch == TextArch::Gemma2;
  const int64_t H = t.hidden, I = t.intermediate, q_dim = t.heads * t.head_dim, kv_dim = t.kv_heads * t.head_dim;
  Workspace::Frame frame(ws);
  float* h = ws.floats(size_t(total * H));       // h: [total, H]
  float* q = ws.floats(size_t(total * q_dim));   // q, a: [total, heads · head_dim]
  float* a = ws.floats(size_t(total * q_dim));
  float* k = ws.floats(size_t(total * kv_dim));  // k, v: [total, kv_heads · head_dim]
  float* v = ws.floats(size_t(total * kv_dim));

  // Attention: q, k, v = h·Wᵀ, rotated by position; a = softmax(q·kᵀ / √query_pre_attn_scalar)·v.
  gemma_rms_norm(x, total, L.input_norm, h);
  linear(L.q, h, total, q, mode);
  linear(L.k, h, total, k, mode);
  linear(L.v, h, total, v, mode);
  rope(q, total, t.heads, t.head_dim, positions, t.rope_theta, act_);
  rope(k, total, t.kv_heads, t.head_dim, positions, t.rope_theta, act_);
  AttentionShape shape;
  shape.n_heads = t.heads;
  shape.n_kv_heads = t.kv_heads;
  shape.head_dim = t.head_dim;
  shape.scale = 1.0f / std::sqrt(t.query_pre_attn_scalar);
  shape.softcap = t.attn_softcap;
  shape.window = (options_.sliding_window && t.sliding_layers[size_t(index)]) ? t.sliding_window : 0;
  shape.act = act_;
  int64_t row = 0;
  for (const SequenceRows& s : seqs) {  // each sequence's new keys and values join its cache
    KVCache& c = *s.cache;
    const int64_t start = c.length_;
    float* cache_k = c.k_[size_t(index)].data();
    float* cache_v = c.v_[size_t(index)].data();
    std::copy_n(k + row * kv_dim, s.count * kv_dim, cache_k + start * kv_dim);
    std::copy_n(v + row * kv_dim, s.count * kv_dim, cache_v + start * kv_dim);
    shape.prefix_len = c.prefix_len_;
    attention(q + row * q_dim, s.count, start, cache_k, cache_v, start + s.count, shape, a + row * q_dim);
    row += s.count;
  }
  linear(L.o, a, total, h, mode);
  if (gemma2) gemma_rms_norm(h, total, L.post_attention_norm, h);
  add_residual(x, h, total * H);

  // MLP: gate, up: [total, I]; h = (gelu_tanh(gate) ⊙ up)·W_downᵀ. Gemma's "post_attention_layernorm" is
  // its pre-MLP norm; Gemma 2 has a separate pre_feedforward one.
  float* gate = ws.floats(size_t(total * I));
  float* up = ws.floats(size_t(total * I));
  gemma_rms_norm(x, total, gemma2 ? L.pre_ffn_norm : L.post_attention_norm, h);
  linear(L.gate, h, total, gate, mode);
  linear(L.up, h, total, up, mode);
  gelu_tanh_mul(gate, up, total * I, act_);
  linear(L.down, gate, total, h, mode);
  if (gemma2) gemma_rms_norm(h, total, L.post_ffn_norm, h);
  add_residual(x, h, total * H);
}

// GemmaModel.forward after the embeddings: the decoder layers, then the final norm of each sequence's last
// row. x: [total, H], the residual stream.
std::vector<std::vector<float>> PaliGemmaModel::run_decoder(const std::vector<SequenceRows>& seqs, const float* rows,
                                                            Rows mode, Workspace& ws) const {
  const int64_t H = config_.text.hidden;
  int64_t total = 0;
  for (const SequenceRows& s : seqs) {
    if (s.count <= 0) throw Error("a decoder step needs at least one input row per sequence");
    if (s.cache->length_ + s.count > s.cache->capacity_)
      throw Error("sequence of " + std::to_string(s.cache->length_ + s.count) +
                  " tokens exceeds the cache capacity of " + std::to_string(s.cache->capacity_));
    total += s.count;
  }
  // transformers numbers positions from 1 (modeling_paligemma.py: "Paligemma positions are 1-indexed").
  std::vector<int64_t> positions;
  positions.reserve(size_t(total));
  for (const SequenceRows& s : seqs) {
    if (s.cache->length_ == 0) s.cache->prefix_len_ = s.count;  // the first rows are the bidirectional prefix
    for (int64_t i = 0; i < s.count; ++i) positions.push_back(s.cache->length_ + i + 1);
  }

  Workspace::Frame frame(ws);
  float* x = ws.floats(size_t(total * H));
  std::copy_n(rows, total * H, x);
  for (int64_t l = 0; l < config_.text.layers; ++l) text_layer(l, seqs, positions.data(), x, total, mode, ws);

  std::vector<std::vector<float>> last;
  int64_t end = 0;
  for (const SequenceRows& s : seqs) {
    s.cache->length_ += s.count;
    end += s.count;
    std::vector<float> h(static_cast<size_t>(H));
    gemma_rms_norm(x + (end - 1) * H, 1, w_.final_norm, h.data());
    last.push_back(std::move(h));
  }
  return last;
}

std::vector<float> PaliGemmaModel::forward(KVCache& cache, const float* rows, int64_t count) const {
  if (count <= 0) throw Error("forward needs at least one input row");
  return run_decoder({{&cache, count}}, rows, Rows::Shared, cache.workspace_)[0];
}

std::vector<std::vector<float>> PaliGemmaModel::forward_batch(const std::vector<KVCache*>& caches, const float* rows,
                                                              Workspace* workspace) const {
  if (caches.empty()) return {};
  std::vector<SequenceRows> seqs;
  for (KVCache* c : caches) seqs.push_back({c, 1});
  // Rows of separate sequences: each must decode exactly as it would alone (kernels/matmul.h, Rows).
  return run_decoder(seqs, rows, Rows::Independent, pick(workspace, caches[0]->workspace_));
}

std::vector<std::vector<float>> PaliGemmaModel::prefill_batch(const std::vector<KVCache*>& caches,
                                                              const std::vector<std::vector<float>>& rows,
                                                              Workspace* workspace) const {
  if (caches.size() != rows.size())
    throw Error("prefill_batch: " + std::to_string(caches.size()) + " caches for " + std::to_string(rows.size()) +
                " prompts");
  if (caches.empty()) return {};
  const int64_t H = config_.text.hidden;
  std::vector<SequenceRows> seqs;
  std::vector<float> x;
  for (size_t b = 0; b < caches.size(); ++b) {
    if (caches[b]->length_ != 0) throw Error("prefill_batch needs empty caches");
    if (rows[b].empty() || int64_t(rows[b].size()) % H != 0)
      throw Error("prefill_batch: prompt " + std::to_string(b) + " has " + std::to_string(rows[b].size()) +
                  " values, not a positive multiple of the hidden size " + std::to_string(H));
    seqs.push_back({caches[b], int64_t(rows[b].size()) / H});
    x.insert(x.end(), rows[b].begin(), rows[b].end());
  }
  return run_decoder(seqs, x.data(), Rows::Shared, pick(workspace, caches[0]->workspace_));
}

std::vector<float> PaliGemmaModel::logits(const std::vector<float>& hidden, Workspace* workspace) const {
  return logits_batch({hidden}, workspace);
}

// The tied output projection, z = h·embed_tokensᵀ, then the final soft-cap z = cap · tanh(z / cap).
// hidden: B × [H] -> z: [B, V]
std::vector<float> PaliGemmaModel::logits_batch(const std::vector<std::vector<float>>& hidden,
                                                Workspace* workspace) const {
  const int64_t H = config_.text.hidden, V = config_.text.vocab, B = int64_t(hidden.size());
  Workspace local;
  Workspace& ws = pick(workspace, local);
  Workspace::Frame frame(ws);
  float* rows = ws.floats(size_t(B * H));
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<float>& h = hidden[size_t(b)];
    if (int64_t(h.size()) != H)
      throw Error("hidden state has " + std::to_string(h.size()) + " values, expected " + std::to_string(H));
    std::copy(h.begin(), h.end(), rows + b * H);
  }
  std::vector<float> z(size_t(B * V));
  pg::linear(rows, B, w_.embed_tokens, nullptr, z.data(), Rows::Independent);
  round_act(z.data(), B * V);
  const float cap = config_.text.final_softcap;
  if (options_.final_softcap && cap > 0.f)
    for (float& zi : z) zi = cap * std::tanh(zi / cap);
  return z;
}

}  // namespace pg
