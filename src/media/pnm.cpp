// PNM (P1-P6), as Pillow's PpmImagePlugin: maxval != 255 is rescaled with Python's round() (half to
// even) of v / maxval * 255; grey with maxval > 255 becomes mode "I" (scaled to 65535, or raw for
// 65535 in binary files) and then clips to 255 on conversion to RGB.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "media/decoders.h"

namespace pg::image_decoders {
namespace {

bool pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

}  // namespace

ImageRGB8 decode_pnm(const uint8_t* d, size_t n, const std::string& name, size_t max_pixels) {
  size_t pos = 0;
  std::string magic;
  for (int i = 0; i < 6 && pos < n; ++i) {
    const uint8_t c = d[pos++];
    if (pnm_space(c)) break;
    magic.push_back(char(c));
  }
  if (magic.size() != 2 || magic[0] != 'P' || magic[1] < '1' || magic[1] > '6') {
    fail(name, "PNM variant '" + magic + "' is not supported (only P1-P6); convert the image to PNG");
  }
  const int kind = magic[1] - '0';
  auto read_token = [&]() {
    std::string token;
    while (token.size() <= 10) {
      if (pos >= n) break;
      const uint8_t c = d[pos++];
      if (pnm_space(c)) {
        if (token.empty()) continue;
        break;
      }
      if (c == '#') {
        while (pos < n) {
          const uint8_t k = d[pos++];
          if (k == '\r' || k == '\n') break;
        }
        continue;
      }
      token.push_back(char(c));
    }
    if (token.empty()) fail_truncated(name, "PNM header:");
    if (token.size() > 10) fail_corrupt(name, "PNM", "header token too long");
    return token;
  };
  auto parse_int = [&](const std::string& token) {
    size_t i = token[0] == '+' ? 1 : 0;
    if (i == token.size()) fail_corrupt(name, "PNM", "bad number '" + token + "' in header");
    uint64_t v = 0;
    for (; i < token.size(); ++i) {
      if (token[i] < '0' || token[i] > '9') fail_corrupt(name, "PNM", "bad number '" + token + "' in header");
      v = v * 10 + uint64_t(token[i] - '0');
    }
    return v;
  };
  const uint64_t width = parse_int(read_token());
  const uint64_t height = parse_int(read_token());
  const bool bitmap = kind == 1 || kind == 4;
  const int bands = (kind == 3 || kind == 6) ? 3 : 1;
  uint64_t maxval = 1;
  if (!bitmap) {
    maxval = parse_int(read_token());
    if (maxval == 0 || maxval >= 65536) fail_corrupt(name, "PNM", "maxval must be between 1 and 65535");
  }
  check_dimensions(name, width, height, max_pixels);
  const size_t w = size_t(width), h = size_t(height), count = w * h;
  const bool mode_i = bands == 1 && !bitmap && maxval > 255;  // Pillow's mode "I"
  const double out_max = mode_i ? 65535.0 : 255.0;
  auto scale = [&](uint64_t v) {  // Python: round(v / maxval * out_max)
    return uint64_t(std::nearbyint(double(v) / double(maxval) * out_max));
  };
  auto to_u8 = [&](uint64_t v) { return uint8_t(std::min<uint64_t>(v, 255)); };  // also I -> RGB clip

  ImageRGB8 image = new_image(int(w), int(h));
  uint8_t* out = image.pixels.data();
  auto store = [&](size_t sample, uint8_t v) {
    if (bands == 3) {
      out[sample] = v;
    } else {
      out[3 * sample] = out[3 * sample + 1] = out[3 * sample + 2] = v;
    }
  };

  if (kind <= 3) {
    // Plain (ASCII) formats: drop comments ('#' up to and including the next CR or LF), then split.
    std::vector<uint8_t> text;
    text.reserve(n - pos);
    for (size_t i = pos; i < n; ++i) {
      if (d[i] == '#') {
        while (i < n && d[i] != '\n' && d[i] != '\r') ++i;
        continue;
      }
      text.push_back(d[i]);
    }
    const size_t total = count * size_t(bands);
    size_t produced = 0, i = 0;
    if (bitmap) {
      for (; i < text.size() && produced < total; ++i) {
        if (pnm_space(text[i])) continue;
        if (text[i] != '0' && text[i] != '1') fail_corrupt(name, "PNM", "invalid token in P1 data");
        store(produced++, text[i] == '1' ? 0 : 255);
      }
    } else {
      while (produced < total) {
        while (i < text.size() && pnm_space(text[i])) ++i;
        if (i >= text.size()) break;
        const size_t start = i;
        while (i < text.size() && !pnm_space(text[i])) ++i;
        const std::string token(text.begin() + long(start), text.begin() + long(i));
        if (token.size() > 10) fail_corrupt(name, "PNM", "token too long in data");
        if (token[0] == '-') fail_corrupt(name, "PNM", "negative sample value");
        const uint64_t v = parse_int(token);
        if (v > maxval) fail_corrupt(name, "PNM", "sample value larger than maxval");
        store(produced++, to_u8(scale(v)));
      }
    }
    if (produced < total) fail_truncated(name, "PNM");
    return image;
  }

  if (kind == 4) {
    const size_t stride = (w + 7) / 8;
    if ((n - pos) / stride < h) fail_truncated(name, "PNM");
    for (size_t y = 0; y < h; ++y) {
      for (size_t x = 0; x < w; ++x) {
        const bool black = (d[pos + y * stride + x / 8] >> (7 - x % 8)) & 1;
        store(y * w + x, black ? 0 : 255);
      }
    }
    return image;
  }

  const size_t total = count * size_t(bands);
  const size_t sample_bytes = maxval < 256 ? 1 : 2;
  if ((n - pos) / sample_bytes < total) fail_truncated(name, "PNM");
  const uint8_t* p = d + pos;
  for (size_t s = 0; s < total; ++s) {
    const uint64_t raw = sample_bytes == 1 ? p[s] : uint64_t(p[2 * s]) << 8 | p[2 * s + 1];
    uint64_t v;
    if (maxval == 255) {
      v = raw;
    } else if (mode_i && maxval == 65535) {
      v = raw;  // rawmode I;16B
    } else {
      v = std::min<uint64_t>(uint64_t(out_max), scale(raw));
    }
    store(s, to_u8(v));
  }
  return image;
}

}  // namespace pg::image_decoders
