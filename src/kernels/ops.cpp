#include "kernels/ops.h"

#include <cmath>
#include <vector>

namespace pg {

void rms_norm_reference(const float* x, int64_t rows, int64_t dim, const float* w, float scale_offset, float eps,
              float* y) {
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.f;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / float(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] * inv) * (scale_offset + w[i]);
  }
}

void layer_norm_reference(const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                float* y) {
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double mean = 0.0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= double(dim);
    double var = 0.0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= double(dim);
    const float inv = float(1.0 / std::sqrt(var + double(eps)));
    const float m = float(mean);
    for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * inv * w[i] + b[i];
  }
}

static inline float gelu_tanh_scalar(float v) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
}

void gelu_tanh_reference(float* x, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_tanh_scalar(x[i]);
}

void gelu_tanh_mul_reference(float* a, const float* b, int64_t n, DType act) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) a[i] = round_to_dtype(round_to_dtype(gelu_tanh_scalar(a[i]), act) * b[i], act);
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void scale_inplace(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int64_t* positions, float theta,
          DType act) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  // inv_freq = 1 / theta^(2i/d), computed in float32 like the reference's torch.arange(...).float() path.
  for (int64_t i = 0; i < half; ++i)
    inv_freq[size_t(i)] = 1.0f / std::pow(theta, float(2 * i) / float(head_dim));
#pragma omp parallel for schedule(static) if (rows > 16)
  for (int64_t r = 0; r < rows; ++r) {
    const float pos = float(positions[r]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[size_t(i)];
      const float c = round_to_dtype(std::cos(angle), act), s = round_to_dtype(std::sin(angle), act);
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * head_dim;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = round_to_dtype(round_to_dtype(x1 * c, act) - round_to_dtype(x2 * s, act), act);
        v[i + half] = round_to_dtype(round_to_dtype(x2 * c, act) + round_to_dtype(x1 * s, act), act);
      }
    }
  }
}

void softmax(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, v[i]);
    float sum = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      v[i] = std::exp(v[i] - mx);
      sum += v[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < n; ++i) v[i] *= inv;
  }
}

}  // namespace pg
