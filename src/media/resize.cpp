// Pillow 13's resamplers (ImagingResample in Resample.c), bit for bit: bicubic on 8-bit RGB images (the
// SigLIP input resize) and bilinear on float maps (segmentation masks).
#include "media/resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "media/rgb_image.h"
#include "paligemma/error.h"

// The resampling coefficients must be computed with exactly Pillow's double arithmetic: no fused
// multiply-add contraction, whatever -march the project is built with.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace pg {
namespace {

// Bicubic: Pillow's ImagingResample for 8-bit images with the bicubic filter.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct BicubicCoefficients {
  int ksize = 0;
  std::vector<int> first;  // first input index per output index
  std::vector<int> count;  // number of inputs per output index
  std::vector<int32_t> k;  // fixed-point weights, ksize per output index
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box (0, in_size).
BicubicCoefficients bicubic_coefficients(int in_size, int out_size) {
  const float in0 = 0.0f, in1 = float(in_size);
  const double scale = double(in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
  BicubicCoefficients c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.k.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> w(size_t(c.ksize));
  const double inv_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = bicubic((x + xmin - center + 0.5) * inv_filterscale);
      w[size_t(x)] = v;
      ww += v;
    }
    int32_t* kk = &c.k[size_t(xx) * size_t(c.ksize)];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[size_t(x)] / ww : w[size_t(x)];
      kk[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift, as Pillow's lookup table index
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

ImageRGB8 resample_horizontal(const ImageRGB8& src, int out_width) {
  const BicubicCoefficients c = bicubic_coefficients(src.width, out_width);
  ImageRGB8 out = new_image(out_width, src.height);
  for (int y = 0; y < src.height; ++y) {
    const uint8_t* in = &src.pixels[size_t(y) * size_t(src.width) * 3];
    uint8_t* o = &out.pixels[size_t(y) * size_t(out_width) * 3];
    for (int xx = 0; xx < out_width; ++xx) {
      const int32_t* k = &c.k[size_t(xx) * size_t(c.ksize)];
      const uint8_t* p = in + size_t(c.first[size_t(xx)]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < c.count[size_t(xx)]; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      o[3 * xx + 0] = clip8(s0), o[3 * xx + 1] = clip8(s1), o[3 * xx + 2] = clip8(s2);
    }
  }
  return out;
}

ImageRGB8 resample_vertical(const ImageRGB8& src, int out_height) {
  const BicubicCoefficients c = bicubic_coefficients(src.height, out_height);
  ImageRGB8 out = new_image(src.width, out_height);
  const size_t row = size_t(src.width) * 3;
  std::vector<int32_t> acc(row);
  for (int yy = 0; yy < out_height; ++yy) {
    const int32_t* k = &c.k[size_t(yy) * size_t(c.ksize)];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[size_t(yy)]; ++y) {
      const uint8_t* in = &src.pixels[size_t(c.first[size_t(yy)] + y) * row];
      const int32_t weight = k[y];
      for (size_t i = 0; i < row; ++i) acc[i] += in[i] * weight;
    }
    uint8_t* o = &out.pixels[size_t(yy) * row];
    for (size_t i = 0; i < row; ++i) o[i] = clip8(acc[i]);
  }
  return out;
}

// Bilinear: Pillow's precompute_coeffs (Resample.c) with the bilinear (triangle, support 1) filter for the
// box (0, in_size): per output index the first input index and its normalized double weights.
struct BilinearCoefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> weights;  // ksize per output index
};

BilinearCoefficients bilinear_coefficients(int in_size, int out_size) {
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  BilinearCoefficients c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.weights.assign(size_t(out_size) * size_t(c.ksize), 0.0);
  const double inverse_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int xmax = std::min(int(center + support + 0.5), in_size) - xmin;
    double* k = &c.weights[size_t(xx) * size_t(c.ksize)];
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::abs((x + xmin - center + 0.5) * inverse_filterscale);
      k[x] = t < 1.0 ? 1.0 - t : 0.0;
      total += k[x];
    }
    if (total != 0.0)
      for (int x = 0; x < xmax; ++x) k[x] /= total;
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

// One pass along rows (horizontal) or columns (vertical) of a row-major [height, width] float image.
std::vector<float> resample_float_pass(const std::vector<float>& src, int width, int height, int out_size, bool horizontal) {
  const BilinearCoefficients c = bilinear_coefficients(horizontal ? width : height, out_size);
  const int out_width = horizontal ? out_size : width, out_height = horizontal ? height : out_size;
  std::vector<float> out(size_t(out_width) * size_t(out_height));
  for (int yy = 0; yy < out_height; ++yy) {
    for (int xx = 0; xx < out_width; ++xx) {
      const int index = horizontal ? xx : yy;
      const double* k = &c.weights[size_t(index) * size_t(c.ksize)];
      const int first = c.first[size_t(index)];
      double sum = 0.0;
      for (int t = 0; t < c.count[size_t(index)]; ++t) {
        const int sx = horizontal ? first + t : xx, sy = horizontal ? yy : first + t;
        sum += double(src[size_t(sy) * size_t(width) + size_t(sx)]) * k[t];
      }
      out[size_t(yy) * size_t(out_width) + size_t(xx)] = float(sum);
    }
  }
  return out;
}

}  // namespace

ImageRGB8 resize_bicubic_pil(const ImageRGB8& src, int out_width, int out_height) {
  check_image(src, "resize_bicubic_pil");
  if (out_width <= 0 || out_height <= 0) {
    throw Error("resize_bicubic_pil: target size " + std::to_string(out_width) + "x" + std::to_string(out_height) +
                " is invalid; both sides must be at least 1");
  }
  if (out_width == src.width && out_height == src.height) return src;
  // Separable: a pass whose size does not change is skipped, and each pass rounds to uint8, so the
  // order matters. Pillow 13 (ImagingResampleInner, as built in the reference root: read from its
  // machine code and confirmed on 1472 random size pairs) runs the vertical pass first when it
  // removes more than twice as many rows as the horizontal pass removes columns:
  //   in_h - out_h > 0 && in_h - out_h > 2 * (in_w - out_w);
  // otherwise the horizontal pass first (the order of all earlier Pillow versions).
  if (out_width == src.width) return resample_vertical(src, out_height);
  if (out_height == src.height) return resample_horizontal(src, out_width);
  const int64_t rows_removed = int64_t(src.height) - out_height;
  const int64_t columns_removed = int64_t(src.width) - out_width;
  if (rows_removed > 0 && rows_removed > 2 * columns_removed) {
    return resample_horizontal(resample_vertical(src, out_height), out_width);
  }
  return resample_vertical(resample_horizontal(src, out_width), out_height);
}

std::vector<float> resize_bilinear_pil_float(const std::vector<float>& src, int width, int height, int out_width,
                                             int out_height) {
  if (width < 1 || height < 1 || out_width < 1 || out_height < 1 || src.size() != size_t(width) * size_t(height))
    throw Error("resize_bilinear_pil_float: cannot resize " + std::to_string(width) + "x" + std::to_string(height) +
                " (" + std::to_string(src.size()) + " values) to " + std::to_string(out_width) + "x" +
                std::to_string(out_height));
  // Pass order of Pillow 13's ImagingResampleInner (see resize_bicubic_pil above); checked for
  // float images in tools/reference/make_vae_fixtures.py's cases.
  const bool horizontal = out_width != width, vertical = out_height != height;
  const int64_t rows_removed = int64_t(height) - out_height, columns_removed = int64_t(width) - out_width;
  if (horizontal && vertical && rows_removed > 0 && rows_removed > 2 * columns_removed)
    return resample_float_pass(resample_float_pass(src, width, height, out_height, false), width, out_height, out_width, true);
  std::vector<float> out = horizontal ? resample_float_pass(src, width, height, out_width, true) : src;
  return vertical ? resample_float_pass(out, out_width, height, out_height, false) : out;
}

}  // namespace pg
