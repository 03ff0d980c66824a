// Image decoding and the PaliGemma image preprocessing (PIL-compatible bicubic resize, [-1, 1] scaling).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "paligemma/error.h"

namespace pg {

// 8-bit RGB image, rows top to bottom, pixels interleaved R,G,B.
struct ImageRGB8 {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

// Thrown when an image's header declares more pixels than allowed (a decompression bomb, or simply too
// large): distinct from other decoding errors so that a server can answer 413 instead of 415.
class ImageTooLargeError : public Error {
 public:
  using Error::Error;
};

// Upper bound on decoded pixels accepted by default (guards against decompression bombs).
constexpr size_t kDefaultMaxImagePixels = size_t{1} << 28;

// Decodes JPEG, PNG, BMP, GIF (first frame), TGA, PNM (P1-P6) and WebP (first frame if animated); the
// format is detected from the magic bytes, not the file name. The result equals Pillow 13's
// Image.open(f).convert("RGB") pixel for pixel (tests/fixtures/images, make_image_fixtures.py):
//   * grey is replicated; alpha is dropped, not composited; palettes are looked up (indices past the
//     palette are black); tRNS / GIF transparency are ignored;
//   * 16-bit PNG: RGB, RGBA and grey+alpha keep the high byte; 16-bit grey (Pillow mode "I;16") is
//     clipped, min(v, 255); PNM with maxval != 255 is rescaled as Pillow does;
//   * CMYK JPEG is read as Adobe (inverted) CMYK and converted with Pillow's formula;
//   * JPEG uses libjpeg-turbo's defaults (ISLOW IDCT, fancy upsampling), as Pillow does;
//   * EXIF orientation is not applied.
// Throws pg::Error naming the file for a missing, unreadable, empty, truncated, corrupt or unsupported
// file, for zero width or height, and for width * height > max_pixels (checked from the header before
// any pixel memory is allocated).
ImageRGB8 decode_image_file(const std::string& path, size_t max_pixels = kDefaultMaxImagePixels);
ImageRGB8 decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                              size_t max_pixels = kDefaultMaxImagePixels);

// PIL Image.resize((out_width, out_height), Image.BICUBIC) on an 8-bit RGB image, bit-exact with
// Pillow 13: separable bicubic (a = -0.5) convolution whose support widens with the downscale factor
// (antialiasing), 22-bit fixed-point weights, uint8 rounding after each pass, a pass whose size does not
// change skipped, and Pillow 13's pass order (vertical first when it removes more than twice as many
// rows as the horizontal pass removes columns, else horizontal first). An image already at the target
// size is returned unchanged. Throws pg::Error for an invalid image or a target side < 1.
ImageRGB8 resize_bicubic_pil(const ImageRGB8& src, int out_width, int out_height);

// Channels-first float pixels [3, H, W] as the SigLIP image processor computes them: float32(x * (1/255)
// in float64), then (v - 0.5f) / 0.5f in float32 — bit-identical to transformers' pixel_values.
// Throws pg::Error for an invalid image.
std::vector<float> normalize_to_chw(const ImageRGB8& image);

}  // namespace pg
