// The mask decoder of PaliGemma's segmentation output: the decoder half of big_vision's VQ-VAE
// (vae-oid.npz; big_vision/evaluators/proj/paligemma/segmentation.py and big_vision's reference
// implementation of the VAE), which turns an object's 16 <segNNN> codes into a 64x64 mask logit map.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pg {

constexpr int kSegCodebookSize = 128;  // <seg000> ... <seg127>
constexpr int kSegCodesPerObject = 16;
constexpr int kMaskMapSize = 64;

// The decoder half of the mask VQ-VAE, loaded from vae-oid.npz (PyTorch state_dict names and layouts):
// codebook `_vq_vae._embedding` [128, D]; `decoder.0` 1x1 conv D->C + ReLU; two residual blocks
// `decoder.{2,3}.net.{0,2,4}` (3x3 conv + ReLU, 3x3 conv + ReLU, 1x1 conv, plus the block input);
// `decoder.{4,6,8,10}` ConvTranspose2d(kernel 4, stride 2, padding 1) + ReLU, weights [in, out, 4, 4];
// `decoder.12` 1x1 conv -> 1 channel. All widths are read from the array shapes (the released file has
// D = 512, C = 128 and 128/64/32/16 upsampling channels); encoder arrays are ignored.
class MaskDecoder {
 public:
  // The arrays come from `lookup` (float32, by state_dict name); `source` names where they came from in
  // errors. Throws pg::Error naming the source and array for a missing array or a shape that does not fit.
  MaskDecoder(const std::string& source, const TensorLookup& lookup);

  // 16 codes in [0, 127] (a 4x4 grid, row-major) -> 64x64 map, row-major, float32. Nominally in [-1, 1];
  // a pixel is inside the mask where the value is > 0. Throws pg::Error for a wrong count or a code out of range.
  std::vector<float> decode(const std::vector<int>& codes) const;

 private:
  struct Conv {
    int in = 0, out = 0, kernel = 0;
    std::vector<float> weight;  // PyTorch layout: Conv2d [out, in, k, k]; ConvTranspose2d [in, out, k, k]
    std::vector<float> bias;    // [out]
  };
  static Conv load_conv(const std::string& source, const TensorLookup& lookup, const std::string& name, int in, int out, int kernel, bool transposed);

  int codebook_dim_ = 0;
  std::vector<float> codebook_;  // [128, D]
  Conv input_;
  std::array<std::array<Conv, 3>, 2> residual_;
  std::array<Conv, 4> upsample_;
  Conv output_;
};

}  // namespace pg
