// Image decoding, matching Pillow 13's Image.open(f).convert("RGB") bit for bit: the format is found from the
// magic bytes and decoded by its family's file (decoders.h); here too the errors every decoder shares.
//
// JPEG, PNG and WebP go through the same libraries Pillow uses (libjpeg-turbo, libpng, libwebp's
// WebPAnimDecoder). GIF, BMP, PNM and TGA are decoded by this project, following Pillow's decoders
// (GifDecode.c, BmpImagePlugin.py, PpmImagePlugin.py, TgaImagePlugin.py/TgaRleDecode.c) including
// their quirks, because stb_image differs from Pillow on transparent GIF pixels, 16-bit BMPs, BMP RLE,
// plain (ASCII) PNM, PNM maxval scaling and TGA colour-map offsets.
//
// PIL's conversion rules the decoders reproduce (checked against Pillow 13.0.0 in the reference root):
//   * grey -> replicated to R, G, B; alpha is dropped, never composited;
//   * palette -> looked up; indices past the end of the palette give black (0, 0, 0);
//   * 16-bit PNG: RGB/RGBA/grey+alpha keep the high byte (v >> 8); 16-bit grey opens as mode "I;16"
//     and its conversion to RGB clips: min(v, 255);
//   * CMYK JPEG: Pillow always assumes Adobe's inverted CMYK and converts with
//     R = k - k * (255 - c) / 255 (rounded like its MULDIV255), likewise G and B;
//   * EXIF orientation is not applied.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "core/file.h"
#include "media/decoders.h"
#include "paligemma/error.h"
#include "paligemma/image.h"

namespace pg::image_decoders {

[[noreturn]] void fail(const std::string& name, const std::string& message) {
  throw Error("image '" + name + "': " + message);
}

namespace {

const char* const kTruncated =
    "the file is truncated (it ends before the image data is complete); re-download or re-export it";

}  // namespace

[[noreturn]] void fail_truncated(const std::string& name, const std::string& format) {
  fail(name, format + " " + kTruncated);
}

[[noreturn]] void fail_corrupt(const std::string& name, const std::string& format, const std::string& detail) {
  fail(name, "corrupt " + format + " data (" + detail + "); re-export the image as PNG or JPEG");
}

// Checks the header's dimensions before anything is allocated (decompression-bomb guard).
void check_dimensions(const std::string& name, uint64_t width, uint64_t height, size_t max_pixels) {
  if (width == 0 || height == 0) {
    fail(name, "has zero width or height (" + std::to_string(width) + "x" + std::to_string(height) +
                   "); re-export the image");
  }
  const uint64_t limit = std::min<uint64_t>(max_pixels, uint64_t{std::numeric_limits<int>::max()});
  if (width > limit || height > limit || width * height > limit) {
    throw ImageTooLargeError("image '" + name + "' is " + std::to_string(width) + "x" + std::to_string(height) +
                             " = " + std::to_string(width * height) + " pixels, more than the limit of " +
                             std::to_string(limit) +
                             " (guard against decompression bombs); downscale the image or pass a larger max_pixels");
  }
}

}  // namespace pg::image_decoders

namespace pg {
namespace {

using namespace image_decoders;

// Format detection by magic bytes.
enum class Format { Png, Jpeg, Gif, Bmp, WebP, Pnm, Tga, Unknown };

Format detect_format(const uint8_t* d, size_t n) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 8 && std::memcmp(d, png_magic, 8) == 0) return Format::Png;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::Jpeg;
  if (n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0)) return Format::Gif;
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return Format::Bmp;
  if (n >= 16 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0 &&
      (std::memcmp(d + 12, "VP8 ", 4) == 0 || std::memcmp(d + 12, "VP8L", 4) == 0 ||
       std::memcmp(d + 12, "VP8X", 4) == 0)) {
    return Format::WebP;
  }
  if (n >= 2 && d[0] == 'P' && std::strchr("0123456fy", d[1]) && d[1] != 0) return Format::Pnm;
  if (tga_header_plausible(d, n)) return Format::Tga;
  return Format::Unknown;
}

std::string hex_prefix(const uint8_t* d, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", d[i]);
    if (i) s += ' ';
    s += buf;
  }
  return s;
}

}  // namespace

ImageRGB8 decode_image_memory(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels) {
  if (size == 0 || data == nullptr) fail(name, "the file is empty (0 bytes); re-download or re-export it");
  switch (detect_format(data, size)) {
    case Format::Png: return decode_png(data, size, name, max_pixels);
    case Format::Jpeg: return decode_jpeg(data, size, name, max_pixels);
    case Format::Gif: return decode_gif(data, size, name, max_pixels);
    case Format::Bmp: return decode_bmp(data, size, name, max_pixels);
    case Format::WebP: return decode_webp(data, size, name, max_pixels);
    case Format::Pnm: return decode_pnm(data, size, name, max_pixels);
    case Format::Tga: return decode_tga(data, size, name, max_pixels);
    case Format::Unknown: break;
  }
  fail(name, "is not in a supported image format (first bytes: " + hex_prefix(data, size) +
                 "); supported are JPEG, PNG, WebP, GIF, BMP, PNM (P1-P6) and TGA — convert it to PNG or JPEG");
}

ImageRGB8 decode_image_file(const std::string& path, size_t max_pixels) {
  const std::string bytes = read_regular_file(path, "image file");
  return decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path, max_pixels);
}

}  // namespace pg
