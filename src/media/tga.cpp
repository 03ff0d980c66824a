// TGA, as Pillow's TgaImagePlugin/TgaRleDecode.c: colour-mapped (8-bit indices, 16/24/32-bit map
// with its first-entry offset), true colour 16 (5-5-5)/24/32, grey 8 and 16 (grey + alpha), raw or
// RLE, any orientation. A TGA file has no signature, so it is recognised by a plausible header.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "media/decoders.h"

namespace pg::image_decoders {

bool tga_header_plausible(const uint8_t* d, size_t n) {
  if (n < 18) return false;
  const uint8_t cmap_type = d[1], type = d[2], depth = d[16];
  const int w = le16(d + 12), h = le16(d + 14);
  if (cmap_type > 1 || w <= 0 || h <= 0) return false;
  if (depth != 1 && depth != 8 && depth != 16 && depth != 24 && depth != 32) return false;
  return type == 1 || type == 2 || type == 3 || type == 9 || type == 10 || type == 11;
}

ImageRGB8 decode_tga(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels) {
  const uint8_t id_len = d[0], cmap_type = d[1], type = d[2], cmap_depth = d[7], depth = d[16], flags = d[17];
  const unsigned cmap_start = le16(d + 3), cmap_len = le16(d + 5);
  const unsigned w = le16(d + 12), h = le16(d + 14);
  const int base = type & 7;
  enum class Raw { P8, L8, LA16, Bgr15, Bgr24, Bgra32, Bit1 } raw;
  if (base == 1 && depth == 8 && cmap_type) {
    raw = Raw::P8;
  } else if (base == 3 && depth == 8) {
    raw = Raw::L8;
  } else if (base == 3 && depth == 16) {
    raw = Raw::LA16;
  } else if (base == 3 && depth == 1 && !(type & 8)) {
    raw = Raw::Bit1;
  } else if (base == 2 && depth == 16) {
    raw = Raw::Bgr15;
  } else if (base == 2 && depth == 24) {
    raw = Raw::Bgr24;
  } else if (base == 2 && depth == 32) {
    raw = Raw::Bgra32;
  } else {
    fail(name, "TGA type " + std::to_string(type) + " with " + std::to_string(depth) +
                   "-bit pixels is not supported; re-export the image as PNG");
  }
  size_t pos = std::min<size_t>(18 + size_t(id_len), n);
  Palette pal;
  if (cmap_type) {
    const size_t entry = cmap_depth == 16 ? 2 : cmap_depth == 24 ? 3 : cmap_depth == 32 ? 4 : 0;
    if (entry == 0) fail(name, "TGA colour-map depth " + std::to_string(cmap_depth) + " is not supported; re-export the image as PNG");
    const size_t have = std::min(size_t(cmap_len) * entry, n - pos) / entry;
    for (size_t i = 0; i < have; ++i) {
      const uint8_t* e = d + pos + i * entry;
      const size_t index = cmap_start + i;
      if (index > 255) break;
      if (entry == 2) {
        const unsigned v = le16(e);
        pal.set(int(index), expand5(v >> 10), expand5(v >> 5), expand5(v));
      } else {
        pal.set(int(index), e[2], e[1], e[0]);
      }
    }
    pos += std::min(size_t(cmap_len) * entry, n - pos);
  }
  check_dimensions(name, w, h, max_pixels);
  const size_t pixel_bytes = raw == Raw::Bit1 ? 0 : depth / 8;
  const size_t row_bytes = raw == Raw::Bit1 ? (size_t(w) + 7) / 8 : size_t(w) * pixel_bytes;
  std::vector<uint8_t> rows(row_bytes * h);  // in file order
  if (type & 8) {
    // RLE packets; a run may not cross the end of a row (Pillow reports an overrun), a literal
    // packet may.
    size_t row = 0, x = 0, extra = 0;
    while (row < h) {
      if (pos >= n) fail_truncated(name, "TGA");
      const uint8_t header = d[pos];
      size_t count = pixel_bytes * ((header & 0x7F) + 1);
      uint8_t* line = &rows[row * row_bytes];
      if (header & 0x80) {
        if (n - pos < 1 + pixel_bytes) fail_truncated(name, "TGA");
        if (x + count > row_bytes) fail_corrupt(name, "TGA", "RLE run crosses the end of a row");
        for (size_t i = 0; i < count; i += pixel_bytes) std::memcpy(line + x + i, d + pos + 1, pixel_bytes);
        pos += 1 + pixel_bytes;
      } else {
        if (n - pos < 1 + count) fail_truncated(name, "TGA");
        if (x + count > row_bytes) {
          extra = count - (row_bytes - x);
          count = row_bytes - x;
        }
        std::memcpy(line + x, d + pos + 1, count);
        pos += 1 + count;
      }
      for (;;) {
        x += count;
        if (x >= row_bytes) {
          x = 0;
          if (++row >= h) break;
        }
        if (extra == 0 || x > 0) break;
        count = std::min(extra, row_bytes);
        std::memcpy(&rows[row * row_bytes], d + pos, count);
        pos += count;
        extra -= count;
      }
    }
  } else {
    if ((n - pos) / std::max<size_t>(row_bytes, 1) < h) fail_truncated(name, "TGA");
    std::memcpy(rows.data(), d + pos, rows.size());
  }

  ImageRGB8 image = new_image(int(w), int(h));
  const bool top_down = flags & 0x20, right_to_left = flags & 0x10;
  for (size_t i = 0; i < h; ++i) {
    const size_t y = top_down ? i : h - 1 - i;
    const uint8_t* src = &rows[i * row_bytes];
    for (size_t x = 0; x < w; ++x) {
      const size_t ox = right_to_left ? w - 1 - x : x;
      uint8_t* out = &image.pixels[(y * w + ox) * 3];
      switch (raw) {
        case Raw::P8: pal.put(src[x], out); break;
        case Raw::L8: out[0] = out[1] = out[2] = src[x]; break;
        case Raw::LA16: out[0] = out[1] = out[2] = src[2 * x]; break;
        case Raw::Bit1: out[0] = out[1] = out[2] = ((src[x / 8] >> (7 - x % 8)) & 1) ? 255 : 0; break;
        case Raw::Bgr15: {
          const unsigned v = le16(src + 2 * x);
          out[0] = expand5(v >> 10), out[1] = expand5(v >> 5), out[2] = expand5(v);
          break;
        }
        case Raw::Bgr24:
        case Raw::Bgra32: {
          const uint8_t* px = src + pixel_bytes * x;
          out[0] = px[2], out[1] = px[1], out[2] = px[0];
          break;
        }
      }
    }
  }
  return image;
}

}  // namespace pg::image_decoders
