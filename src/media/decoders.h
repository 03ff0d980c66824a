// Internal to src/media: the per-format decoders behind decode_image_memory (decode.cpp dispatches on the
// magic bytes) and what they share. Each decoder follows Pillow 13's own (see include/paligemma/image.h for
// the conversion rules) and throws pg::Error naming the file, ImageTooLargeError past max_pixels.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "media/rgb_image.h"
#include "paligemma/image.h"

namespace pg::image_decoders {

// The errors every decoder raises, worded alike: "image '<name>': ...".
[[noreturn]] void fail(const std::string& name, const std::string& message);
[[noreturn]] void fail_truncated(const std::string& name, const std::string& format);
[[noreturn]] void fail_corrupt(const std::string& name, const std::string& format, const std::string& detail);

// Checks the header's dimensions before anything is allocated (decompression-bomb guard).
void check_dimensions(const std::string& name, uint64_t width, uint64_t height, size_t max_pixels);

inline uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// A palette as Pillow keeps it: up to 256 RGB entries, missing entries black.
struct Palette {
  std::array<uint8_t, 256 * 3> rgb{};
  void set(int index, uint8_t r, uint8_t g, uint8_t b) {
    if (index < 0 || index > 255) return;
    rgb[size_t(index) * 3 + 0] = r;
    rgb[size_t(index) * 3 + 1] = g;
    rgb[size_t(index) * 3 + 2] = b;
  }
  void put(uint8_t index, uint8_t* out) const { std::memcpy(out, &rgb[size_t(index) * 3], 3); }
};

// Pillow's 5-bit and 6-bit channel expansion (Unpack.c): v * 255 / 31 and v * 255 / 63, truncated.
inline uint8_t expand5(unsigned v) { return uint8_t((v & 31) * 255 / 31); }
inline uint8_t expand6(unsigned v) { return uint8_t((v & 63) * 255 / 63); }

// One decoder per format family (png.cpp, jpeg.cpp, webp.cpp, gif.cpp, bmp.cpp, pnm.cpp, tga.cpp).
ImageRGB8 decode_png(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels);
ImageRGB8 decode_jpeg(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels);
ImageRGB8 decode_webp(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels);
ImageRGB8 decode_gif(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels);
ImageRGB8 decode_bmp(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels);
ImageRGB8 decode_pnm(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels);
ImageRGB8 decode_tga(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels);

// A TGA file has no signature: it is recognised by a plausible header.
bool tga_header_plausible(const uint8_t* d, size_t n);

}  // namespace pg::image_decoders
