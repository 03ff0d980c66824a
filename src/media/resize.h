// Pillow 13's resamplers, bit for bit: resize_bicubic_pil on 8-bit RGB images (declared with the public
// image API, paligemma/image.h) and resize_bilinear_pil_float on float maps, below.
#pragma once
#include <vector>

#include "paligemma/image.h"

namespace pg {

// PIL's Image.fromarray(map, mode="F").resize((out_width, out_height), Image.BILINEAR), bit-exact with
// Pillow 13: separable triangle filter whose support widens by the downscale factor (antialiasing), double
// weights and sums, float32 storage after each pass, a pass whose size does not change skipped, the
// vertical pass first when it removes more than twice as many rows as the horizontal pass removes columns.
// `src` is row-major [height, width]. Throws pg::Error for sizes < 1 or a buffer of the wrong size.
std::vector<float> resize_bilinear_pil_float(const std::vector<float>& src, int width, int height, int out_width,
                                             int out_height);

}  // namespace pg
