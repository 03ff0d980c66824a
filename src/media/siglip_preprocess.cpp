// SigLIP's image preprocessing after the resize: rescale to [0, 1] and normalize to [-1, 1], channels first.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "media/rgb_image.h"
#include "paligemma/image.h"

namespace pg {

std::vector<float> normalize_to_chw(const ImageRGB8& image) {
  check_image(image, "normalize_to_chw");
  // transformers' rescale multiplies in float64 by 1/255 and casts to float32; normalize then works
  // in float32: (x - 0.5f) / 0.5f. Reproduced operation by operation, so the floats are identical.
  const size_t plane = size_t(image.width) * size_t(image.height);
  std::vector<float> out(plane * 3);
  constexpr double kScale = 1.0 / 255.0;
  float lut[256];
  for (int v = 0; v < 256; ++v) {
    const float rescaled = float(double(v) * kScale);
    lut[v] = (rescaled - 0.5f) / 0.5f;
  }
  const uint8_t* in = image.pixels.data();
  for (size_t c = 0; c < 3; ++c) {
    float* dst = out.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) dst[i] = lut[in[3 * i + c]];
  }
  return out;
}

}  // namespace pg
