#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "kernels/ops.h"

namespace pg {

void attention_reference(const float* q, int64_t T, int64_t q_start, const float* k, const float* v, int64_t n_keys,
               const AttentionShape& s, float* out) {
  const int64_t hd = s.head_dim;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = s.n_heads * hd, kv_stride = s.n_kv_heads * hd;
#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(n_keys));
#pragma omp for collapse(2) schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < s.n_heads; ++h) {
        const int64_t i = q_start + t;
        const float* qv = q + t * q_stride + h * hd;
        const int64_t kvh = h / group;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n_keys; ++j) {
          if (!attention_allowed(i, j, s)) {
            scores[size_t(j)] = -INFINITY;
            continue;
          }
          const float* kv = k + j * kv_stride + kvh * hd;
          float dot = 0.f;
          for (int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
          float sc = round_to_dtype(round_to_dtype(dot, s.act) * s.scale, s.act);
          if (s.softcap > 0.f) {
            sc = round_to_dtype(std::tanh(round_to_dtype(sc / s.softcap, s.act)), s.act);
            sc = round_to_dtype(sc * s.softcap, s.act);
          }
          scores[size_t(j)] = sc;
          if (sc > mx) mx = sc;
        }
        float sum = 0.f;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float p = scores[size_t(j)] == -INFINITY ? 0.f : std::exp(scores[size_t(j)] - mx);
          scores[size_t(j)] = p;
          sum += p;
        }
        const float inv = 1.0f / sum;
        float* o = out + t * q_stride + h * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = 0.f;
        for (int64_t j = 0; j < n_keys; ++j) {
          const float p = round_to_dtype(scores[size_t(j)] * inv, s.act);
          if (p == 0.f) continue;
          const float* vv = v + j * kv_stride + kvh * hd;
          for (int64_t d = 0; d < hd; ++d) o[d] += p * vv[d];
        }
        round_inplace_reference(o, size_t(hd), s.act);
      }
    }
  }
}

}  // namespace pg
