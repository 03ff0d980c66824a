#include "model/paligemma.h"

#include <algorithm>
#include <cmath>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "paligemma/error.h"

namespace pg {
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

void PaliGemmaModel::linear(const Linear& L, const float* x, int64_t rows, float* y) const {
  const float* bias = L.bias.empty() ? nullptr : L.bias.data();
  if (L.quantized.data) quant_matmul(x, rows, L.quantized, bias, y);
  else matmul(x, rows, L.weight, bias, y);
  round_act(y, rows * L.weight.rows);
}

void PaliGemmaModel::vision_layer(const VisionLayer& L, std::vector<float>& x, int64_t n) const {
  const VisionConfig& v = config_.vision;
  const int64_t D = v.hidden;
  std::vector<float> h(static_cast<size_t>(n * D)), q(size_t(n * D)), k(size_t(n * D)), val(size_t(n * D)), a(size_t(n * D));
  layer_norm(x.data(), n, D, L.ln1_w.data(), L.ln1_b.data(), v.layer_norm_eps, h.data());
  round_act(h.data(), n * D);
  linear(L.q, h.data(), n, q.data());
  linear(L.k, h.data(), n, k.data());
  linear(L.v, h.data(), n, val.data());
  AttentionShape s;
  s.n_heads = v.heads;
  s.n_kv_heads = v.heads;
  s.head_dim = D / v.heads;
  s.scale = 1.0f / std::sqrt(float(s.head_dim));
  s.prefix_len = n;  // every patch sees every patch
  s.act = act_;
  attention(q.data(), n, 0, k.data(), val.data(), n, s, a.data());
  linear(L.o, a.data(), n, h.data());
  add_inplace(x.data(), h.data(), n * D);
  round_act(x.data(), n * D);
  layer_norm(x.data(), n, D, L.ln2_w.data(), L.ln2_b.data(), v.layer_norm_eps, h.data());
  round_act(h.data(), n * D);
  std::vector<float> m(static_cast<size_t>(n * v.intermediate));
  linear(L.fc1, h.data(), n, m.data());
  gelu_tanh(m.data(), n * v.intermediate);
  round_act(m.data(), n * v.intermediate);
  linear(L.fc2, m.data(), n, h.data());
  add_inplace(x.data(), h.data(), n * D);
  round_act(x.data(), n * D);
}

std::vector<float> PaliGemmaModel::vision_features(const float* pixels) const {
  const VisionConfig& v = config_.vision;
  const int64_t S = v.image_size, P = v.patch_size, G = v.patches_per_side(), N = v.tokens(), D = v.hidden;
  const int64_t patch_len = v.channels * P * P;
  // Patchify in the conv weight's (channel, ky, kx) order; token index = row * G + col.
  std::vector<float> patches(static_cast<size_t>(N * patch_len));
  for (int64_t r = 0; r < G; ++r)
    for (int64_t c = 0; c < G; ++c) {
      float* dst = patches.data() + (r * G + c) * patch_len;
      for (int64_t ch = 0; ch < v.channels; ++ch)
        for (int64_t ky = 0; ky < P; ++ky)
          for (int64_t kx = 0; kx < P; ++kx)
            *dst++ = pixels[(ch * S + r * P + ky) * S + c * P + kx];
    }
  // The reference casts pixel values to the patch embedding's dtype.
  round_act(patches.data(), N * patch_len);
  std::vector<float> x(static_cast<size_t>(N * D));
  linear(w_.patch_embedding, patches.data(), N, x.data());
  std::vector<float> pos(static_cast<size_t>(D));
  for (int64_t t = 0; t < N; ++t) {
    to_f32(w_.position_embedding.row(t), w_.position_embedding.dtype, pos.data(), size_t(D));
    add_inplace(x.data() + t * D, pos.data(), D);
  }
  round_act(x.data(), N * D);
  for (const VisionLayer& L : w_.vision_layers) vision_layer(L, x, N);
  layer_norm(x.data(), N, D, w_.post_ln_w.data(), w_.post_ln_b.data(), v.layer_norm_eps, x.data());
  round_act(x.data(), N * D);
  return x;
}

std::vector<float> PaliGemmaModel::image_embeddings(const float* pixels) const {
  const std::vector<float> f = vision_features(pixels);
  const int64_t N = config_.vision.tokens();
  std::vector<float> e(static_cast<size_t>(N * config_.text.hidden));
  linear(w_.projector, f.data(), N, e.data());
  return e;
}

std::vector<float> PaliGemmaModel::embed_token(int32_t id) const {
  const int64_t H = config_.text.hidden;
  if (id < 0 || id >= config_.text.vocab)
    throw Error("token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                std::to_string(config_.text.vocab));
  std::vector<float> row(static_cast<size_t>(H));
  if (w_.embed_tokens_quantized.data)
    dequantize_row(w_.embed_tokens_quantized.row(id), H, w_.embed_tokens_quantized.type, row.data());
  else
    to_f32(w_.embed_tokens.row(id), w_.embed_tokens.dtype, row.data(), size_t(H));
  scale_inplace(row.data(), H, normalizer_);
  round_act(row.data(), H);
  return row;
}

std::vector<float> PaliGemmaModel::embed_prompt(const std::vector<int32_t>& ids,
                                                const std::vector<float>& image_rows) const {
  const int64_t H = config_.text.hidden;
  const int64_t T = int64_t(ids.size());
  std::vector<float> x(static_cast<size_t>(T * H));
  int64_t next_image_row = 0;
  const int64_t image_row_count = int64_t(image_rows.size()) / H;
  for (int64_t t = 0; t < T; ++t) {
    float* dst = x.data() + t * H;
    if (ids[size_t(t)] == config_.image_token_id) {
      if (next_image_row >= image_row_count)
        throw Error("the prompt has more image placeholders than image features");
      // transformers 5.x scatters the projector output unscaled over the scaled text embeddings
      // (modeling_paligemma.py get_image_features / masked_scatter), like big_vision.
      std::copy_n(image_rows.data() + next_image_row * H, H, dst);
      ++next_image_row;
    } else {
      const std::vector<float> row = embed_token(ids[size_t(t)]);
      std::copy(row.begin(), row.end(), dst);
    }
  }
  if (next_image_row != image_row_count)
    throw Error("the prompt has " + std::to_string(next_image_row) + " image placeholders for " +
                std::to_string(image_row_count) + " image feature rows");
  return x;
}

void PaliGemmaModel::text_layer(int64_t index, const std::vector<SequenceRows>& seqs, std::vector<float>& x,
                                int64_t total) const {
  const TextConfig& t = config_.text;
  const TextLayer& L = w_.text_layers[size_t(index)];
  const int64_t H = t.hidden, q_dim = t.heads * t.head_dim, kv_dim = t.kv_heads * t.head_dim;
  std::vector<float> h(static_cast<size_t>(total * H));
  std::vector<float> q(static_cast<size_t>(total * q_dim)), a(static_cast<size_t>(total * q_dim));
  std::vector<float> k(static_cast<size_t>(total * kv_dim)), v(static_cast<size_t>(total * kv_dim));
  rms_norm(x.data(), total, H, L.input_norm.data(), 1.f, t.rms_norm_eps, h.data());
  round_act(h.data(), total * H);
  linear(L.q, h.data(), total, q.data());
  linear(L.k, h.data(), total, k.data());
  linear(L.v, h.data(), total, v.data());
  // transformers numbers positions from 1 (modeling_paligemma.py: "Paligemma positions are 1-indexed").
  std::vector<int64_t> positions;
  positions.reserve(size_t(total));
  for (const SequenceRows& s : seqs)
    for (int64_t i = 0; i < s.count; ++i) positions.push_back(s.cache->length_ + i + 1);
  rope(q.data(), total, t.heads, t.head_dim, positions.data(), t.rope_theta, act_);
  rope(k.data(), total, t.kv_heads, t.head_dim, positions.data(), t.rope_theta, act_);

  AttentionShape shape;
  shape.n_heads = t.heads;
  shape.n_kv_heads = t.kv_heads;
  shape.head_dim = t.head_dim;
  shape.scale = 1.0f / std::sqrt(t.query_pre_attn_scalar);
  shape.softcap = t.attn_softcap;
  shape.window = (options_.sliding_window && t.sliding_layers[size_t(index)]) ? t.sliding_window : 0;
  shape.act = act_;
  int64_t row = 0;
  for (const SequenceRows& s : seqs) {
    KVCache& c = *s.cache;
    const int64_t start = c.length_;
    float* cache_k = c.k_[size_t(index)].data();
    float* cache_v = c.v_[size_t(index)].data();
    std::copy_n(k.data() + row * kv_dim, s.count * kv_dim, cache_k + start * kv_dim);
    std::copy_n(v.data() + row * kv_dim, s.count * kv_dim, cache_v + start * kv_dim);
    shape.prefix_len = c.prefix_len_;
    attention(q.data() + row * q_dim, s.count, start, cache_k, cache_v, start + s.count, shape,
              a.data() + row * q_dim);
    row += s.count;
  }
  linear(L.o, a.data(), total, h.data());
  if (t.arch == TextArch::Gemma2) {
    rms_norm(h.data(), total, H, L.post_attention_norm.data(), 1.f, t.rms_norm_eps, h.data());
    round_act(h.data(), total * H);
  }
  add_inplace(x.data(), h.data(), total * H);
  round_act(x.data(), total * H);

  // Gemma's "post_attention_layernorm" is its pre-MLP norm; Gemma 2 has a separate pre_feedforward one.
  const std::vector<float>& pre_mlp = t.arch == TextArch::Gemma2 ? L.pre_ffn_norm : L.post_attention_norm;
  rms_norm(x.data(), total, H, pre_mlp.data(), 1.f, t.rms_norm_eps, h.data());
  round_act(h.data(), total * H);
  std::vector<float> gate(static_cast<size_t>(total * t.intermediate)), up(static_cast<size_t>(total * t.intermediate));
  linear(L.gate, h.data(), total, gate.data());
  linear(L.up, h.data(), total, up.data());
  gelu_tanh_mul(gate.data(), up.data(), total * t.intermediate, act_);
  linear(L.down, gate.data(), total, h.data());
  if (t.arch == TextArch::Gemma2) {
    rms_norm(h.data(), total, H, L.post_ffn_norm.data(), 1.f, t.rms_norm_eps, h.data());
    round_act(h.data(), total * H);
  }
  add_inplace(x.data(), h.data(), total * H);
  round_act(x.data(), total * H);
}

std::vector<std::vector<float>> PaliGemmaModel::run_decoder(const std::vector<SequenceRows>& seqs,
                                                            std::vector<float> x) const {
  const int64_t H = config_.text.hidden;
  int64_t total = 0;
  for (const SequenceRows& s : seqs) {
    if (s.count <= 0) throw Error("a decoder step needs at least one input row per sequence");
    if (s.cache->length_ + s.count > s.cache->capacity_)
      throw Error("sequence of " + std::to_string(s.cache->length_ + s.count) +
                  " tokens exceeds the cache capacity of " + std::to_string(s.cache->capacity_));
    total += s.count;
  }
  for (const SequenceRows& s : seqs)
    if (s.cache->length_ == 0) s.cache->prefix_len_ = s.count;  // the first rows are the bidirectional prefix
  for (int64_t l = 0; l < config_.text.layers; ++l) text_layer(l, seqs, x, total);
  std::vector<std::vector<float>> last;
  int64_t end = 0;
  for (const SequenceRows& s : seqs) {
    s.cache->length_ += s.count;
    end += s.count;
    std::vector<float> h(x.begin() + (end - 1) * H, x.begin() + end * H);
    rms_norm(h.data(), 1, H, w_.final_norm.data(), 1.f, config_.text.rms_norm_eps, h.data());
    round_act(h.data(), H);
    last.push_back(std::move(h));
  }
  return last;
}

std::vector<float> PaliGemmaModel::forward(KVCache& cache, const float* rows, int64_t count) const {
  if (count <= 0) throw Error("forward needs at least one input row");
  const int64_t H = config_.text.hidden;
  return run_decoder({{&cache, count}}, std::vector<float>(rows, rows + count * H))[0];
}

std::vector<std::vector<float>> PaliGemmaModel::forward_batch(const std::vector<KVCache*>& caches,
                                                              const float* rows) const {
  const int64_t H = config_.text.hidden;
  std::vector<std::vector<float>> out;
  // Passes of at most kRowIndependentRows sequences: up to that many rows the matrix products give every
  // row what it gets alone (kernels/matmul.h), so each sequence decodes exactly as it would alone.
  for (size_t first = 0; first < caches.size(); first += size_t(kRowIndependentRows)) {
    const size_t count = std::min(caches.size() - first, size_t(kRowIndependentRows));
    std::vector<SequenceRows> seqs;
    for (size_t b = first; b < first + count; ++b) seqs.push_back({caches[b], 1});
    const float* x = rows + int64_t(first) * H;
    for (auto& h : run_decoder(seqs, std::vector<float>(x, x + int64_t(count) * H))) out.push_back(std::move(h));
  }
  return out;
}

std::vector<std::vector<float>> PaliGemmaModel::prefill_batch(const std::vector<KVCache*>& caches,
                                                              const std::vector<std::vector<float>>& rows) const {
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
  return run_decoder(seqs, std::move(x));
}

std::vector<float> PaliGemmaModel::logits(const std::vector<float>& hidden) const { return logits_batch({hidden}); }

std::vector<float> PaliGemmaModel::logits_batch(const std::vector<std::vector<float>>& hidden) const {
  const int64_t H = config_.text.hidden, V = config_.text.vocab, B = int64_t(hidden.size());
  std::vector<float> rows;
  rows.reserve(size_t(B * H));
  for (const auto& h : hidden) {
    if (int64_t(h.size()) != H) throw Error("hidden state has " + std::to_string(h.size()) + " values, expected " + std::to_string(H));
    rows.insert(rows.end(), h.begin(), h.end());
  }
  std::vector<float> out(static_cast<size_t>(B * V));
  for (int64_t first = 0; first < B; first += kRowIndependentRows) {  // as forward_batch
    const int64_t count = std::min(B - first, kRowIndependentRows);
    const float* x = rows.data() + first * H;
    float* y = out.data() + first * V;
    if (w_.embed_tokens_quantized.data) quant_matmul(x, count, w_.embed_tokens_quantized, nullptr, y);
    else matmul(x, count, w_.embed_tokens, nullptr, y);
  }
  round_act(out.data(), B * V);
  const float cap = config_.text.final_softcap;
  if (options_.final_softcap && cap > 0.f)
    for (float& z : out) z = cap * std::tanh(z / cap);
  return out;
}

}  // namespace pg
