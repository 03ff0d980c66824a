// BMP, as Pillow's BmpImagePlugin: 1/4/8-bit palette, 16-bit 5-5-5 (or bit fields 5-6-5), 24 and
// 32-bit (fourth byte ignored), RLE8 and RLE4. Pillow's quirk is kept: a palette that is an exact
// black/white pair makes the image mode "1" (rows read as 1 bit per pixel whatever the depth), an
// exact grey ramp makes it mode "L" (rows read as one byte per pixel).
#include <algorithm>
#include <string>
#include <vector>

#include "media/decoders.h"

namespace pg::image_decoders {

ImageRGB8 decode_bmp(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels) {
  if (n < 18) fail_truncated(name, "BMP");
  size_t offset = le32(d + 10);
  const uint32_t header_size = le32(d + 14);
  size_t pos = 18;
  const uint8_t* h = d + pos;  // header data after its size field
  if (header_size < 12) fail(name, "BMP header type (" + std::to_string(header_size) + ") is not supported; re-export the image as PNG");
  if (n - pos < header_size - 4) fail_truncated(name, "BMP");
  uint64_t width = 0, height = 0;
  unsigned bits = 0, compression = 0, palette_padding = 0;
  uint64_t colors = 0;
  bool top_down = false;
  uint32_t masks[4] = {0, 0, 0, 0};
  if (header_size == 12) {
    width = le16(h), height = le16(h + 2), bits = le16(h + 6);
    palette_padding = 3;
  } else if (header_size == 40 || header_size == 52 || header_size == 56 || header_size == 64 ||
             header_size == 108 || header_size == 124) {
    top_down = h[7] == 0xFF;
    width = le32(h);
    height = top_down ? (uint64_t{1} << 32) - le32(h + 4) : le32(h + 4);
    bits = le16(h + 10);
    compression = le32(h + 12);
    colors = le32(h + 28);
    palette_padding = 4;
  } else {
    fail(name, "BMP header type (" + std::to_string(header_size) + ") is not supported; re-export the image as PNG");
  }
  pos += header_size - 4;
  if (compression == 3) {  // BITFIELDS
    if (header_size >= 52) {
      for (int i = 0; i < 3; ++i) masks[i] = le32(h + 36 + 4 * i);
      masks[3] = header_size >= 56 ? le32(h + 48) : 0;
    } else {
      if (n - pos < 12) fail_truncated(name, "BMP");
      for (int i = 0; i < 3; ++i) masks[i] = le32(d + pos + 4 * size_t(i));
      pos += 12;
    }
  }
  if (colors == 0) colors = uint64_t{1} << std::min(bits, 32u);
  if (offset == 14 + header_size && bits <= 8) offset += palette_padding * colors;

  // Pixel layout: how a row is unpacked.
  enum class Layout { Index1, Index4, Index8, Rgb555, Rgb565, Bgr24, Bytes32 };
  Layout layout;
  int byte_r = 2, byte_g = 1, byte_b = 0;  // for Bytes32
  switch (bits) {
    case 1: layout = Layout::Index1; break;
    case 4: layout = Layout::Index4; break;
    case 8: layout = Layout::Index8; break;
    case 16: layout = Layout::Rgb555; break;
    case 24: layout = Layout::Bgr24; break;
    case 32: layout = Layout::Bytes32; break;
    default: fail(name, "BMP pixel depth " + std::to_string(bits) + " is not supported; re-export the image as PNG");
  }
  bool rle = false;
  if (compression == 3) {
    const uint32_t r = masks[0], g = masks[1], b = masks[2], a = masks[3];
    auto byte_of = [](uint32_t mask) { return mask == 0xFF ? 0 : mask == 0xFF00 ? 1 : mask == 0xFF0000 ? 2 : 3; };
    bool supported = false;
    if (bits == 32) {
      const uint32_t known[8][4] = {{0xFF0000, 0xFF00, 0xFF, 0},          {0xFF000000, 0xFF0000, 0xFF00, 0},
                                    {0xFF000000, 0xFF00, 0xFF, 0},        {0xFF000000, 0xFF0000, 0xFF00, 0xFF},
                                    {0xFF, 0xFF00, 0xFF0000, 0xFF000000}, {0xFF0000, 0xFF00, 0xFF, 0xFF000000},
                                    {0xFF000000, 0xFF00, 0xFF, 0xFF0000}, {0, 0, 0, 0}};
      for (const auto& k : known) {
        if (k[0] == r && k[1] == g && k[2] == b && k[3] == a) supported = true;
      }
      if (supported && r != 0) byte_r = byte_of(r), byte_g = byte_of(g), byte_b = byte_of(b);
    } else if (bits == 24) {
      supported = r == 0xFF0000 && g == 0xFF00 && b == 0xFF;
    } else if (bits == 16) {
      if (r == 0xF800 && g == 0x7E0 && b == 0x1F) supported = true, layout = Layout::Rgb565;
      if (r == 0x7C00 && g == 0x3E0 && b == 0x1F) supported = true;
    }
    if (!supported) fail(name, "BMP bit-field layout is not supported; re-export the image as PNG");
  } else if (compression == 1 || compression == 2) {
    rle = true;
    if ((compression == 1 && bits != 8) || (compression == 2 && bits != 4)) {
      fail_corrupt(name, "BMP", "RLE compression with a mismatching bit depth");
    }
  } else if (compression != 0) {
    fail(name, "BMP compression " + std::to_string(compression) + " is not supported; re-export the image as PNG");
  }

  // Palette and Pillow's grey detection.
  enum class Mode { P, One, L, Rgb } mode = bits <= 8 ? Mode::P : Mode::Rgb;
  Palette pal;
  if (mode == Mode::P) {
    if (colors == 0 || colors > 65536) fail_corrupt(name, "BMP", "palette size " + std::to_string(colors));
    const size_t want = palette_padding * colors;
    const size_t have = std::min(want, n - std::min(pos, n));
    const uint8_t* p = d + std::min(pos, n);
    pos += have;
    bool grey = true;
    for (uint64_t i = 0; i < (colors == 2 ? 2 : colors); ++i) {
      const uint8_t value = colors == 2 ? uint8_t(i == 0 ? 0 : 255) : uint8_t(i & 255);
      const size_t at = size_t(i) * palette_padding;
      if (at + 3 > have || p[at] != value || p[at + 1] != value || p[at + 2] != value) {
        grey = false;
        break;
      }
    }
    if (grey) {
      mode = colors <= 2 ? Mode::One : Mode::L;
    } else {
      for (size_t i = 0; i < 256 && i * palette_padding + 3 <= have; ++i) {
        const uint8_t* e = p + i * palette_padding;
        pal.set(int(i), e[2], e[1], e[0]);
      }
    }
  }
  if (offset == 0) offset = pos;
  check_dimensions(name, width, height, max_pixels);
  const size_t w = size_t(width), hgt = size_t(height);
  ImageRGB8 image = new_image(int(w), int(hgt));
  auto put_index = [&](size_t x, size_t row, unsigned index) {
    uint8_t* out = &image.pixels[(row * w + x) * 3];
    switch (mode) {
      case Mode::P: pal.put(uint8_t(index), out); break;
      case Mode::One: out[0] = out[1] = out[2] = index ? 255 : 0; break;
      default: out[0] = out[1] = out[2] = uint8_t(index); break;
    }
  };
  // Row `i` of the file is image row (top_down ? i : h - 1 - i).
  auto image_row = [&](size_t i) { return top_down ? i : hgt - 1 - i; };

  if (rle) {
    // Pillow's BmpRleDecoder, byte for byte (including its reading of the absolute file position).
    const bool rle4 = compression == 2;
    std::vector<uint8_t> data;
    const size_t dest = w * hgt;
    data.reserve(dest);
    size_t p = std::min(offset, n);
    size_t x = 0;
    while (data.size() < dest) {
      if (p >= n || n - p < 2) break;  // p may pass the end after the word-alignment skip
      const uint8_t count = d[p], byte = d[p + 1];
      p += 2;
      if (count) {
        size_t num = count;
        if (x + num > w) num = x < w ? w - x : 0;
        for (size_t i = 0; i < num; ++i) data.push_back(rle4 ? uint8_t(i % 2 == 0 ? byte >> 4 : byte & 15) : byte);
        x += num;
      } else if (byte == 0) {
        while (data.size() % w != 0) data.push_back(0);
        x = 0;
      } else if (byte == 1) {
        break;
      } else if (byte == 2) {
        if (p >= n || n - p < 2) break;
        const size_t right = d[p], up = d[p + 1];
        p += 2;
        data.resize(data.size() + std::min(dest - data.size(), right + up * w), 0);
        x = data.size() % w;
      } else {
        const size_t data_count = std::min<size_t>(dest - data.size(), byte);
        const size_t byte_count = rle4 ? (data_count + 1) / 2 : data_count;
        const size_t got = std::min(byte_count, n - p);
        for (size_t i = 0; i < got; ++i) {
          const uint8_t v = d[p + i];
          if (rle4) {
            data.push_back(v >> 4);
            if (i * 2 + 1 < data_count) data.push_back(v & 15);
          } else {
            data.push_back(v);
          }
        }
        p += got;
        if (got < byte_count || data.size() == dest) break;
        x += byte;
        if (p % 2 != 0) ++p;
      }
    }
    if (data.size() < dest) fail_truncated(name, "BMP (RLE)");
    data.resize(dest);
    for (size_t i = 0; i < hgt; ++i) {
      for (size_t x2 = 0; x2 < w; ++x2) put_index(x2, image_row(i), data[i * w + x2]);
    }
    return image;
  }

  const size_t stride = ((w * bits + 31) >> 3) & ~size_t{3};
  if (mode == Mode::L && stride < w) fail_corrupt(name, "BMP", "grey palette on a row too short for 8-bit pixels");
  if (offset > n || (n - offset) / stride < hgt) fail_truncated(name, "BMP");
  for (size_t i = 0; i < hgt; ++i) {
    const uint8_t* row = d + offset + i * stride;
    const size_t y = image_row(i);
    uint8_t* out = &image.pixels[y * w * 3];
    for (size_t x = 0; x < w; ++x, out += 3) {
      if (mode == Mode::One) {
        put_index(x, y, (row[x >> 3] >> (7 - (x & 7))) & 1);
      } else if (mode == Mode::L) {
        put_index(x, y, row[x]);
      } else {
        switch (layout) {
          case Layout::Index1: put_index(x, y, (row[x >> 3] >> (7 - (x & 7))) & 1); break;
          case Layout::Index4: put_index(x, y, (row[x >> 1] >> ((x & 1) ? 0 : 4)) & 15); break;
          case Layout::Index8: put_index(x, y, row[x]); break;
          case Layout::Rgb555: {
            const unsigned v = le16(row + 2 * x);
            out[0] = expand5(v >> 10), out[1] = expand5(v >> 5), out[2] = expand5(v);
            break;
          }
          case Layout::Rgb565: {
            const unsigned v = le16(row + 2 * x);
            out[0] = expand5(v >> 11), out[1] = expand6(v >> 5), out[2] = expand5(v);
            break;
          }
          case Layout::Bgr24: out[0] = row[3 * x + 2], out[1] = row[3 * x + 1], out[2] = row[3 * x]; break;
          case Layout::Bytes32: {
            const uint8_t* px = row + 4 * x;
            out[0] = px[byte_r], out[1] = px[byte_g], out[2] = px[byte_b];
            break;
          }
        }
      }
    }
  }
  return image;
}

}  // namespace pg::image_decoders
