#include "model/mask_decoder.h"

#include <algorithm>

#include "core/shape.h"
#include "paligemma/error.h"

namespace pg {

namespace {

// One array of the decoder, checked against the expected shape (-1 = any size, then read from the file).
std::vector<float> load_array(const std::string& source, const TensorLookup& lookup, const std::string& key,
                              std::vector<int64_t>& shape, const std::string& role) {
  const StoredTensor* a = lookup(key);
  if (!a)
    throw Error(source + " has no array \"" + key + "\" (" + role +
                "); pass PaliGemma's mask decoder vae-oid.npz (gs://big_vision/paligemma/vae-oid.npz)");
  bool fits = a->dtype == DType::F32 && a->shape.size() == shape.size();
  for (size_t i = 0; fits && i < shape.size(); ++i) fits = shape[i] < 0 ? a->shape[i] > 0 : a->shape[i] == shape[i];
  if (!fits) {
    std::string expected = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      expected += (i ? ", " : "") + (shape[i] < 0 ? "*" : std::to_string(shape[i]));
    throw Error(source + ": array \"" + key + "\" (" + role + ") has shape " + shape_to_string(a->shape) +
                ", expected " + expected + "]; is this PaliGemma's vae-oid.npz?");
  }
  shape = a->shape;
  const float* values = static_cast<const float*>(a->data);
  return std::vector<float>(values, values + size_t(checked_byte_count(a->shape, 1)));
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
//   y[o, 2*iy - 1 + ky, 2*ix - 1 + kx] += x[i, iy, ix] * W[i, o, ky, kx]  (torch.nn.ConvTranspose2d).
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

}  // namespace

MaskDecoder::Conv MaskDecoder::load_conv(const std::string& source, const TensorLookup& lookup, const std::string& name, int in, int out, int kernel,
                                         bool transposed) {
  const std::string role = transposed ? "ConvTranspose2d [in, out, 4, 4]" : "Conv2d [out, in, k, k]";
  std::vector<int64_t> shape =
      transposed ? std::vector<int64_t>{in, out, kernel, kernel} : std::vector<int64_t>{out, in, kernel, kernel};
  Conv c;
  c.weight = load_array(source, lookup, name + ".weight", shape, role);
  c.in = int(transposed ? shape[0] : shape[1]);
  c.out = int(transposed ? shape[1] : shape[0]);
  c.kernel = kernel;
  std::vector<int64_t> bias_shape = {c.out};
  c.bias = load_array(source, lookup, name + ".bias", bias_shape, "bias of " + name);
  return c;
}

MaskDecoder::MaskDecoder(const std::string& source, const TensorLookup& lookup) {
  std::vector<int64_t> codebook_shape = {kSegCodebookSize, -1};
  codebook_ = load_array(source, lookup, "_vq_vae._embedding", codebook_shape, "codebook [128, D]");
  codebook_dim_ = int(codebook_shape[1]);
  input_ = load_conv(source, lookup, "decoder.0", codebook_dim_, -1, 1, false);
  const int channels = input_.out;
  for (int b = 0; b < 2; ++b) {
    const std::string block = "decoder." + std::to_string(2 + b) + ".net.";
    residual_[size_t(b)] = {load_conv(source, lookup, block + "0", channels, channels, 3, false),
                            load_conv(source, lookup, block + "2", channels, channels, 3, false),
                            load_conv(source, lookup, block + "4", channels, channels, 1, false)};
  }
  int in = channels;
  for (int u = 0; u < 4; ++u) {
    upsample_[size_t(u)] = load_conv(source, lookup, "decoder." + std::to_string(4 + 2 * u), in, -1, 4, true);
    in = upsample_[size_t(u)].out;
  }
  output_ = load_conv(source, lookup, "decoder.12", in, 1, 1, false);
}

// big_vision's VQ-VAE decoder (the model transformers has no port of; big_vision/evaluators/proj/paligemma/
// segmentation.py loads it), channels-first, C = input_.out:
//   x = relu(conv1x1(codebook[codes]))                            x: [D, 4, 4] -> [C, 4, 4]
//   x = x + conv1x1(relu(conv3x3(relu(conv3x3(x)))))  twice       x: [C, 4, 4]
//   x = relu(conv_transpose4x4_stride2(x))  four times            x: [C, 4, 4] -> [16, 64, 64]
//   map = conv1x1(x)                                              map: [1, 64, 64]
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
  for (const auto& block : residual_) {  // r = conv1x1(relu(conv3x3(relu(conv3x3(x))))); x = x + r
    std::vector<float> r = conv2d(x, size, size, block[0].in, block[0].out, 3, block[0].weight, block[0].bias);
    relu(r);
    r = conv2d(r, size, size, block[1].in, block[1].out, 3, block[1].weight, block[1].bias);
    relu(r);
    r = conv2d(r, size, size, block[2].in, block[2].out, 1, block[2].weight, block[2].bias);
    for (size_t i = 0; i < x.size(); ++i) x[i] += r[i];
  }
  for (const Conv& up : upsample_) {  // x: [in, size, size] -> [out, 2 size, 2 size]
    x = conv_transpose2d(x, size, size, up.in, up.out, up.weight, up.bias);
    size *= 2;
    relu(x);
  }
  return conv2d(x, size, size, output_.in, output_.out, 1, output_.weight, output_.bias);
}

}  // namespace pg
