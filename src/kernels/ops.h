// Element-wise and row-wise operations of transformer inference, all in float32. The functions with a
// `_reference` twin are vectorized and dispatched by instruction set (cpu_features.h); the twin is the
// plain loop they are tested against (and the scalar level).
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace pg {

// Rounds n float32 values to what `t` can represent (no-op for F32): mirrors a reference that keeps its
// activations in bf16/f16. Vectorized and dispatched by instruction set (cpu_features.h).
void round_inplace(float* x, size_t n, DType t);

// Plain reference twin of round_inplace (and the scalar level).
inline void round_inplace_reference(float* x, size_t n, DType t) {
  if (t == DType::F32) return;
  for (size_t i = 0; i < n; ++i) x[i] = round_to_dtype(x[i], t);
}

// y = x * rsqrt(mean(x^2) + eps) * (scale_offset + w), per row of length dim. In-place allowed.
// Gemma stores its RMSNorm weights zero-centred and uses scale_offset = 1.
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
              float* y);
void rms_norm_reference(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
                        float* y);

// y = (x - mean) / sqrt(var + eps) * w + b, biased variance, per row. In-place allowed.
void layer_norm(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                float* y);
void layer_norm_reference(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                          float* y);

// GELU with the tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void gelu_tanh(float* x, int64_t n);
void gelu_tanh_reference(float* x, int64_t n);

// a[i] = gelu_tanh(a[i]) * b[i] (the GeGLU gate); with `act` narrower than F32 the GELU result and the
// product are each rounded to it.
void gelu_tanh_mul(float* a, const float* b, int64_t n, DType act = DType::F32);
void gelu_tanh_mul_reference(float* a, const float* b, int64_t n, DType act = DType::F32);

// y[i] += x[i].
void add_inplace(float* y, const float* x, int64_t n);

// x[i] *= s.
void scale_inplace(float* x, int64_t n, float s);

// Rotary position embedding, "split halves" form, on `heads` vectors of head_dim per row:
// [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin] with angle pos * theta^(-2i/head_dim).
// positions[r] is the position of row r. Angles are computed in float32 like the reference; with
// `act` narrower than F32, cos/sin, both products and the sum are rounded to it, as a reference running
// in that dtype does (q * cos + rotate_half(q) * sin).
void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int64_t* positions, float theta,
          DType act = DType::F32);

// Softmax of each row in place.
void softmax(float* x, int64_t rows, int64_t n);

}  // namespace pg
