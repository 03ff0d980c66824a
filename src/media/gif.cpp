// GIF, first frame, as Pillow's GifImagePlugin + GifDecode.c:
//   * the canvas is the logical screen, enlarged if the first frame's rectangle extends past it;
//   * pixels outside the frame rectangle are the GCE transparency index if there is one, else 0;
//   * transparency is otherwise ignored: transparent pixels show their palette colour;
//   * a palette that is exactly the identity grey ramp makes the image mode "L" (index = grey level);
//     no palette at all likewise; otherwise indices past the palette are black.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "media/decoders.h"

namespace pg::image_decoders {
namespace {

bool gif_palette_needed(const uint8_t* p, size_t bytes) {
  for (size_t i = 0; i + 2 < bytes; i += 3) {
    const size_t index = i / 3;
    if (!(index == p[i] && p[i] == p[i + 1] && p[i + 1] == p[i + 2])) return true;
  }
  return false;
}

}  // namespace

ImageRGB8 decode_gif(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels) {
  if (n < 13) fail_truncated(name, "GIF");
  const unsigned screen_w = le16(d + 6), screen_h = le16(d + 8);
  const uint8_t flags = d[10];
  size_t pos = 13;
  const uint8_t* global = nullptr;
  size_t global_bytes = 0;
  if (flags & 0x80) {
    global_bytes = size_t(3) << ((flags & 7) + 1);
    if (n - pos < global_bytes) fail_truncated(name, "GIF");
    global = d + pos;
    pos += global_bytes;
    if (!gif_palette_needed(global, global_bytes)) global = nullptr;  // grey ramp: mode "L"
  }

  // A sub-block: returns false at a terminator (length 0) or at the end of the file.
  auto sub_block = [&](const uint8_t** block, size_t* length) {
    if (pos >= n) return false;
    const size_t len = d[pos++];
    if (len == 0) return false;
    *block = d + pos;
    *length = std::min(len, n - pos);
    pos += *length;
    return *length > 0;
  };

  int transparency = -1;
  bool found = false;
  unsigned x0 = 0, y0 = 0, fw = 0, fh = 0;
  bool interlace = false;
  const uint8_t* palette = global;
  size_t palette_bytes = global_bytes;
  int lzw_bits = 0;
  while (pos < n) {
    const uint8_t introducer = d[pos++];
    if (introducer == ';') break;
    if (introducer == '!') {
      if (pos >= n) fail_truncated(name, "GIF");
      const uint8_t label = d[pos++];
      const uint8_t* block = nullptr;
      size_t length = 0;
      const bool has_block = sub_block(&block, &length);
      if (label == 0xF9 && has_block) {
        if (length < 4) fail_corrupt(name, "GIF", "short graphic control extension");
        if (block[0] & 1) transparency = block[3];
      } else if (label == 0xFE) {
        bool more = has_block;
        while (more) more = sub_block(&block, &length);
        continue;
      } else if (label == 0xFF && has_block && length >= 11 && std::memcmp(block, "NETSCAPE2.0", 11) == 0) {
        sub_block(&block, &length);
      }
      while (sub_block(&block, &length)) {
      }
    } else if (introducer == ',') {
      if (n - pos < 9) fail_truncated(name, "GIF");
      x0 = le16(d + pos), y0 = le16(d + pos + 2), fw = le16(d + pos + 4), fh = le16(d + pos + 6);
      const uint8_t frame_flags = d[pos + 8];
      pos += 9;
      interlace = (frame_flags & 0x40) != 0;
      if (frame_flags & 0x80) {
        const size_t bytes = size_t(3) << ((frame_flags & 7) + 1);
        if (n - pos < bytes) fail_truncated(name, "GIF");
        palette = gif_palette_needed(d + pos, bytes) ? d + pos : nullptr;
        palette_bytes = bytes;
        pos += bytes;
      }
      if (pos >= n) fail_truncated(name, "GIF");
      lzw_bits = d[pos++];
      found = true;
      break;
    }
    // Any other byte is skipped, as Pillow does.
  }
  if (!found) fail(name, "GIF contains no image (no image descriptor); re-export it");
  if (fw == 0 || fh == 0) fail_corrupt(name, "GIF", "the first frame is empty");
  const unsigned width = std::max(screen_w, x0 + fw), height = std::max(screen_h, y0 + fh);
  check_dimensions(name, width, height, max_pixels);
  if (lzw_bits > 12) fail_corrupt(name, "GIF", "LZW code size over 12");

  std::vector<uint8_t> canvas(size_t(width) * height, uint8_t(transparency >= 0 ? transparency : 0));

  // LZW decoding, following GifDecode.c (error conditions included).
  constexpr int kTable = 4096;
  std::vector<uint8_t> table_data(kTable), stack(kTable);
  std::vector<uint16_t> table_link(kTable);
  const int clear = 1 << lzw_bits, end = clear + 1;
  int next = clear + 2, codesize = lzw_bits + 1, codemask = (1 << codesize) - 1;
  int state = 2;  // 2: first code after a clear, 3: inside a string table
  uint8_t lastdata = 0;
  int lastcode = 0;
  uint32_t bitbuffer = 0;
  int bitcount = 0;
  const uint8_t* block = nullptr;
  size_t block_left = 0;
  bool blocks_done = false;
  unsigned x = 0, y = 0, step = interlace ? 8 : 1;
  int pass = interlace ? 1 : 0;
  bool done = false;

  // Writes one index; returns false when the frame is complete.
  auto emit = [&](uint8_t value) {
    canvas[size_t(y + y0) * width + x0 + x] = value;
    if (++x < fw) return true;
    x = 0;
    y += step;
    while (y >= fh) {
      switch (pass) {
        case 1: y = 4, pass = 2; break;
        case 2: step = 4, y = 2, pass = 3; break;
        case 3: step = 2, y = 1, pass = 0; break;
        default: return false;
      }
    }
    return true;
  };

  while (!done) {
    while (bitcount < codesize) {
      if (block_left == 0) {
        if (blocks_done || !sub_block(&block, &block_left)) {
          blocks_done = true;
          fail_truncated(name, "GIF");
        }
      }
      bitbuffer |= uint32_t(*block++) << bitcount;
      --block_left;
      bitcount += 8;
    }
    int c = int(bitbuffer & uint32_t(codemask));
    bitbuffer >>= codesize;
    bitcount -= codesize;

    if (c == clear) {
      next = clear + 2, codesize = lzw_bits + 1, codemask = (1 << codesize) - 1;
      state = 2;
      continue;
    }
    if (c == end) fail_truncated(name, "GIF");  // the frame is not complete yet

    int depth = 0;  // characters pushed on the stack after lastdata
    if (state == 2) {
      if (c > clear) fail_corrupt(name, "GIF", "invalid first LZW code");
      lastdata = uint8_t(c);
      lastcode = c;
      state = 3;
    } else {
      const int thiscode = c;
      if (c > next) fail_corrupt(name, "GIF", "invalid LZW code");
      if (c == next) {
        stack[size_t(depth++)] = lastdata;
        c = lastcode;
      }
      while (c >= clear) {
        if (depth >= kTable || c >= kTable) fail_corrupt(name, "GIF", "LZW string too long");
        stack[size_t(depth++)] = table_data[size_t(c)];
        c = table_link[size_t(c)];
      }
      lastdata = uint8_t(c);
      if (next < kTable) {
        table_data[size_t(next)] = uint8_t(c);
        table_link[size_t(next)] = uint16_t(lastcode);
        if (next == codemask && codesize < 12) {
          ++codesize;
          codemask = (1 << codesize) - 1;
        }
        ++next;
      }
      lastcode = thiscode;
    }
    if (!emit(lastdata)) break;
    while (depth > 0) {
      if (!emit(stack[size_t(--depth)])) {
        done = true;
        break;
      }
    }
  }

  ImageRGB8 image = new_image(int(width), int(height));
  Palette pal;
  if (palette) {
    for (size_t i = 0; i * 3 + 2 < palette_bytes && i < 256; ++i) {
      pal.set(int(i), palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]);
    }
  }
  for (size_t i = 0; i < canvas.size(); ++i) {
    if (palette) {
      pal.put(canvas[i], &image.pixels[3 * i]);
    } else {
      image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = canvas[i];
    }
  }
  return image;
}

}  // namespace pg::image_decoders
