#include "tasks/segmentation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/npz.h"
#include "paligemma/error.h"

namespace pg {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One array of the decoder, checked against the expected shape (-1 = any size, then read from the file).
std::vector<float> load_array(const NpzFile& npz, const std::string& key, std::vector<int64_t>& shape,
                              const std::string& role) {
  if (!npz.contains(key))
    throw Error(npz.path() + " has no array \"" + key + "\" (" + role +
                "); pass PaliGemma's mask decoder vae-oid.npz (gs://big_vision/paligemma/vae-oid.npz)");
  const NpyArray a = npz.read_f32(key);
  bool fits = a.shape.size() == shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i) fits = shape[i] < 0 ? a.shape[i] > 0 : a.shape[i] == shape[i];
  if (!fits) {
    std::string expected = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      expected += (i ? ", " : "") + (shape[i] < 0 ? "*" : std::to_string(shape[i]));
    throw Error(npz.path() + ": array \"" + key + "\" (" + role + ") has shape " + shape_string(a.shape) +
                ", expected " + expected + "]; is this PaliGemma's vae-oid.npz?");
  }
  shape = a.shape;
  return a.as_f32();
}

// Same-size 2-D convolution (stride 1, zero padding (k - 1) / 2) over [in, h, w] -> [out, h, w].
std::vector<float> conv2d(const std::vector<float>& x, int h, int w, int in, int out, int k,
                          const std::vector<float>& weight, const std::vector<float>& bias) {
  const int pad = (k - 1) / 2;
  std::vector<float> y(size_t(out) * size_t(h) * size_t(w));
  for (int o = 0; o < out; ++o) {
    for (int r = 0; r < h; ++r) {
      for (int c = 0; c < w; ++c) {
        float sum = bias[size_t(o)];
        for (int i = 0; i < in; ++i) {
          const float* wk = &weight[((size_t(o) * size_t(in) + size_t(i)) * size_t(k)) * size_t(k)];
          const float* xi = &x[size_t(i) * size_t(h) * size_t(w)];
          for (int ky = 0; ky < k; ++ky) {
            const int sr = r + ky - pad;
            if (sr < 0 || sr >= h) continue;
            for (int kx = 0; kx < k; ++kx) {
              const int sc = c + kx - pad;
              if (sc < 0 || sc >= w) continue;
              sum += wk[ky * k + kx] * xi[size_t(sr) * size_t(w) + size_t(sc)];
            }
          }
        }
        y[(size_t(o) * size_t(h) + size_t(r)) * size_t(w) + size_t(c)] = sum;
      }
    }
  }
  return y;
}

// PyTorch ConvTranspose2d(kernel 4, stride 2, padding 1) over [in, h, w] -> [out, 2h, 2w]:
//   y[o, 2*iy - 1 + ky, 2*ix - 1 + kx] += x[i, iy, ix] * W[i, o, ky, kx]  (spec §10.2).
std::vector<float> conv_transpose2d(const std::vector<float>& x, int h, int w, int in, int out,
                                    const std::vector<float>& weight, const std::vector<float>& bias) {
  constexpr int k = 4;
  const int oh = 2 * h, ow = 2 * w;
  std::vector<float> y(size_t(out) * size_t(oh) * size_t(ow));
  for (int o = 0; o < out; ++o)
    std::fill_n(&y[size_t(o) * size_t(oh) * size_t(ow)], size_t(oh) * size_t(ow), bias[size_t(o)]);
  for (int i = 0; i < in; ++i) {
    for (int iy = 0; iy < h; ++iy) {
      for (int ix = 0; ix < w; ++ix) {
        const float v = x[(size_t(i) * size_t(h) + size_t(iy)) * size_t(w) + size_t(ix)];
        for (int o = 0; o < out; ++o) {
          const float* wk = &weight[(size_t(i) * size_t(out) + size_t(o)) * k * k];
          float* yo = &y[size_t(o) * size_t(oh) * size_t(ow)];
          for (int ky = 0; ky < k; ++ky) {
            const int r = 2 * iy - 1 + ky;
            if (r < 0 || r >= oh) continue;
            for (int kx = 0; kx < k; ++kx) {
              const int c = 2 * ix - 1 + kx;
              if (c < 0 || c >= ow) continue;
              yo[size_t(r) * size_t(ow) + size_t(c)] += v * wk[ky * k + kx];
            }
          }
        }
      }
    }
  }
  return y;
}

void relu(std::vector<float>& x) {
  for (float& v : x) v = std::max(v, 0.0f);
}

// Pillow's precompute_coeffs (Resample.c) with the bilinear (triangle, support 1) filter for the box
// (0, in_size): per output index the first input index and its normalized double weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> weights;  // ksize per output index
};

Coefficients bilinear_coefficients(int in_size, int out_size) {
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coefficients c;
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
std::vector<float> resample_pass(const std::vector<float>& src, int width, int height, int out_size, bool horizontal) {
  const Coefficients c = bilinear_coefficients(horizontal ? width : height, out_size);
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

MaskDecoder::Conv MaskDecoder::load_conv(const NpzFile& npz, const std::string& name, int in, int out, int kernel,
                                         bool transposed) {
  const std::string role = transposed ? "ConvTranspose2d [in, out, 4, 4]" : "Conv2d [out, in, k, k]";
  std::vector<int64_t> shape =
      transposed ? std::vector<int64_t>{in, out, kernel, kernel} : std::vector<int64_t>{out, in, kernel, kernel};
  Conv c;
  c.weight = load_array(npz, name + ".weight", shape, role);
  c.in = int(transposed ? shape[0] : shape[1]);
  c.out = int(transposed ? shape[1] : shape[0]);
  c.kernel = kernel;
  std::vector<int64_t> bias_shape = {c.out};
  c.bias = load_array(npz, name + ".bias", bias_shape, "bias of " + name);
  return c;
}

MaskDecoder::MaskDecoder(const std::string& npz_path) {
  const NpzFile npz(npz_path);
  std::vector<int64_t> codebook_shape = {kSegCodebookSize, -1};
  codebook_ = load_array(npz, "_vq_vae._embedding", codebook_shape, "codebook [128, D]");
  codebook_dim_ = int(codebook_shape[1]);
  input_ = load_conv(npz, "decoder.0", codebook_dim_, -1, 1, false);
  const int channels = input_.out;
  for (int b = 0; b < 2; ++b) {
    const std::string block = "decoder." + std::to_string(2 + b) + ".net.";
    residual_[size_t(b)] = {load_conv(npz, block + "0", channels, channels, 3, false),
                            load_conv(npz, block + "2", channels, channels, 3, false),
                            load_conv(npz, block + "4", channels, channels, 1, false)};
  }
  int in = channels;
  for (int u = 0; u < 4; ++u) {
    upsample_[size_t(u)] = load_conv(npz, "decoder." + std::to_string(4 + 2 * u), in, -1, 4, true);
    in = upsample_[size_t(u)].out;
  }
  output_ = load_conv(npz, "decoder.12", in, 1, 1, false);
}

std::vector<float> MaskDecoder::decode(const std::vector<int>& codes) const {
  if (codes.size() != size_t(kSegCodesPerObject))
    throw Error("a mask needs " + std::to_string(kSegCodesPerObject) + " codes, got " + std::to_string(codes.size()));
  // Codebook rows laid out channels-first [D, 4, 4]; code k sits at row k / 4, column k % 4.
  constexpr int grid = 4;
  std::vector<float> x(size_t(codebook_dim_) * grid * grid);
  for (int k = 0; k < kSegCodesPerObject; ++k) {
    const int code = codes[size_t(k)];
    if (code < 0 || code >= kSegCodebookSize)
      throw Error("mask code " + std::to_string(code) + " is out of range [0, 127]");
    for (int d = 0; d < codebook_dim_; ++d)
      x[size_t(d) * grid * grid + size_t(k)] = codebook_[size_t(code) * size_t(codebook_dim_) + size_t(d)];
  }
  int size = grid;
  x = conv2d(x, size, size, input_.in, input_.out, 1, input_.weight, input_.bias);
  relu(x);
  for (const auto& block : residual_) {
    std::vector<float> r = conv2d(x, size, size, block[0].in, block[0].out, 3, block[0].weight, block[0].bias);
    relu(r);
    r = conv2d(r, size, size, block[1].in, block[1].out, 3, block[1].weight, block[1].bias);
    relu(r);
    r = conv2d(r, size, size, block[2].in, block[2].out, 1, block[2].weight, block[2].bias);
    for (size_t i = 0; i < x.size(); ++i) x[i] += r[i];
  }
  for (const Conv& up : upsample_) {
    x = conv_transpose2d(x, size, size, up.in, up.out, up.weight, up.bias);
    size *= 2;
    relu(x);
  }
  return conv2d(x, size, size, output_.in, output_.out, 1, output_.weight, output_.bias);
}

std::vector<float> resize_bilinear_pil_float(const std::vector<float>& src, int width, int height, int out_width,
                                             int out_height) {
  if (width < 1 || height < 1 || out_width < 1 || out_height < 1 || src.size() != size_t(width) * size_t(height))
    throw Error("resize_bilinear_pil_float: cannot resize " + std::to_string(width) + "x" + std::to_string(height) +
                " (" + std::to_string(src.size()) + " values) to " + std::to_string(out_width) + "x" +
                std::to_string(out_height));
  // Pass order of Pillow 13's ImagingResampleInner (see resize_bicubic_pil in src/io/image.cpp); checked for
  // float images in tools/reference/make_vae_fixtures.py's cases.
  const bool horizontal = out_width != width, vertical = out_height != height;
  const int64_t rows_removed = int64_t(height) - out_height, columns_removed = int64_t(width) - out_width;
  if (horizontal && vertical && rows_removed > 0 && rows_removed > 2 * columns_removed)
    return resample_pass(resample_pass(src, width, height, out_height, false), width, out_height, out_width, true);
  std::vector<float> out = horizontal ? resample_pass(src, width, height, out_width, true) : src;
  return vertical ? resample_pass(out, out_width, height, out_height, false) : out;
}

BinaryMask paste_mask(const std::vector<float>& map, const PixelBox& box, int image_width, int image_height) {
  if (image_width < 1 || image_height < 1)
    throw Error("paste_mask: image size " + std::to_string(image_width) + "x" + std::to_string(image_height) +
                " is invalid");
  BinaryMask mask;
  mask.width = image_width;
  mask.height = image_height;
  mask.pixels.assign(size_t(image_width) * size_t(image_height), 0);
  if (box.width() < 1 || box.height() < 1) return mask;
  const std::vector<float> resized =
      resize_bilinear_pil_float(map, kMaskMapSize, kMaskMapSize, box.width(), box.height());
  for (int r = std::max(box.y0, 0); r < std::min(box.y1, image_height); ++r)
    for (int c = std::max(box.x0, 0); c < std::min(box.x1, image_width); ++c)
      mask.pixels[size_t(r) * size_t(image_width) + size_t(c)] =
          resized[size_t(r - box.y0) * size_t(box.width()) + size_t(c - box.x0)] > 0.0f;
  return mask;
}

CocoRle encode_coco_rle(const BinaryMask& mask) {
  CocoRle rle;
  rle.height = mask.height;
  rle.width = mask.width;
  uint8_t current = 0;
  uint32_t run = 0;
  for (int c = 0; c < mask.width; ++c) {
    for (int r = 0; r < mask.height; ++r) {
      const uint8_t v = mask.pixels[size_t(r) * size_t(mask.width) + size_t(c)] ? 1 : 0;
      if (v != current) {
        rle.counts.push_back(run);
        current = v;
        run = 0;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

DecodedObjects decode_objects(std::string_view text, int image_width, int image_height, const MaskDecoder* decoder,
                              size_t max_pixels) {
  ParsedDetections parsed = parse_detections(text, image_width, image_height);
  DecodedObjects out;
  out.objects = std::move(parsed.objects);
  out.text = std::move(parsed.text);
  const uint64_t pixels = uint64_t(image_width) * uint64_t(image_height);
  const bool masks_due = decoder && std::any_of(out.objects.begin(), out.objects.end(), [](const DetectedObject& o) {
                           return o.valid && !o.seg_codes.empty();
                         });
  if (masks_due && pixels > max_pixels)
    throw Error("the masks of a " + std::to_string(image_width) + "x" + std::to_string(image_height) + " image (" +
                std::to_string(pixels) + " pixels) are over the image pixel limit of " + std::to_string(max_pixels) +
                " (each mask is an image-sized bitmap); give the image's real size");
  out.masks.resize(out.objects.size());
  for (size_t i = 0; i < out.objects.size(); ++i) {
    const DetectedObject& o = out.objects[i];
    if (o.seg_codes.empty()) continue;
    if (!decoder) {
      out.needs_mask_decoder = true;
      continue;
    }
    if (o.valid) out.masks[i] = paste_mask(decoder->decode(o.seg_codes), o.box, image_width, image_height);
  }
  return out;
}

nlohmann::json objects_json(const DecodedObjects& decoded) {
  nlohmann::json objects = nlohmann::json::array();
  for (size_t i = 0; i < decoded.objects.size(); ++i) {
    const DetectedObject& o = decoded.objects[i];
    nlohmann::json j{{"label", o.label},
                     {"box", {o.box.x0, o.box.y0, o.box.x1, o.box.y1}},
                     {"box_normalized", o.box_normalized},
                     {"valid", o.valid}};
    if (!o.seg_codes.empty()) j["seg_codes"] = o.seg_codes;
    if (decoded.masks[i]) {
      const CocoRle rle = encode_coco_rle(*decoded.masks[i]);
      j["mask"] = {{"size", {rle.height, rle.width}}, {"counts", rle.counts}};
    }
    objects.push_back(std::move(j));
  }
  return objects;
}

}  // namespace pg
