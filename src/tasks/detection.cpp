#include "tasks/detection.h"

#include <cmath>

#include "model/mask_decoder.h"
#include "paligemma/error.h"

namespace pg {

namespace {

constexpr std::string_view kLocPrefix = "<loc";
constexpr size_t kLocPieceLength = 9;  // "<loc0123>"
constexpr size_t kSegPieceLength = 8;  // "<seg045>"

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t skip_spaces(std::string_view s, size_t pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
  return pos;
}

std::string_view trim(std::string_view s) {
  const size_t b = skip_spaces(s, 0);
  size_t e = s.size();
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// The value of a piece "<{name}{digits decimal digits}>" at s[pos], or -1 when there is none or the value is
// not below `limit` (such a piece is not in the vocabulary, so it is plain text).
int read_piece(std::string_view s, size_t pos, std::string_view name, size_t digits, int limit) {
  const size_t length = 1 + name.size() + digits + 1;
  if (pos + length > s.size() || s[pos] != '<' || s.substr(pos + 1, name.size()) != name || s[pos + length - 1] != '>')
    return -1;
  int value = 0;
  for (size_t i = 0; i < digits; ++i) {
    const char c = s[pos + 1 + name.size() + i];
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value < limit ? value : -1;
}

int read_loc(std::string_view s, size_t pos) { return read_piece(s, pos, "loc", 4, kLocBins); }
int read_seg(std::string_view s, size_t pos) { return read_piece(s, pos, "seg", 3, kSegCodebookSize); }

// Python's round(bin / 1024 * side): the product is exact in double (bin < 2^10, side < 2^31), and
// nearbyint in the default rounding mode rounds halves to even, as Python does.
int bin_to_pixel(int bin, int side) { return int(std::nearbyint(double(bin) / kLocBins * side)); }

void append_text(std::string& out, std::string_view piece) {
  piece = trim(piece);
  if (piece.empty()) return;
  if (!out.empty()) out.push_back(' ');
  out.append(piece);
}

}  // namespace

bool has_loc_tokens(std::string_view text) {
  for (size_t pos = text.find(kLocPrefix); pos != std::string_view::npos; pos = text.find(kLocPrefix, pos + 1))
    if (read_loc(text, pos) >= 0) return true;
  return false;
}

ParsedDetections parse_detections(std::string_view s, int image_width, int image_height) {
  if (image_width < 1 || image_height < 1)
    throw Error("image size " + std::to_string(image_width) + "x" + std::to_string(image_height) +
                " is invalid for mapping boxes; width and height must be at least 1");
  ParsedDetections out;
  size_t plain_start = 0;  // start of text not yet assigned to an object or to `out.text`
  size_t pos = s.find(kLocPrefix);
  while (pos != std::string_view::npos) {
    std::array<int, 4> bins{};
    size_t p = pos;
    int found = 0;
    for (; found < 4; ++found, p += kLocPieceLength) {
      bins[size_t(found)] = read_loc(s, p);
      if (bins[size_t(found)] < 0) break;
    }
    if (found < 4) {  // not the start of an object: stays plain text
      pos = s.find(kLocPrefix, pos + 1);
      continue;
    }
    std::vector<int> codes;
    size_t q = skip_spaces(s, p);
    for (int code; (code = read_seg(s, q)) >= 0; q += kSegPieceLength) codes.push_back(code);
    if (!codes.empty()) p = q;
    p = skip_spaces(s, p);
    size_t label_end = s.find_first_of(";<>", p);
    if (label_end == std::string_view::npos) label_end = s.size();
    size_t end = skip_spaces(s, label_end);
    end = end < s.size() && s[end] == ';' ? end + 1 : label_end;

    append_text(out.text, s.substr(plain_start, pos - plain_start));
    if (codes.empty() || codes.size() == size_t(kSegCodesPerObject)) {
      DetectedObject o;
      o.label = std::string(trim(s.substr(p, label_end - p)));
      o.bins = bins;
      const auto [ymin, xmin, ymax, xmax] = bins;
      o.box = {bin_to_pixel(xmin, image_width), bin_to_pixel(ymin, image_height), bin_to_pixel(xmax, image_width),
               bin_to_pixel(ymax, image_height)};
      o.box_normalized = {double(xmin) / kLocBins, double(ymin) / kLocBins, double(xmax) / kLocBins,
                          double(ymax) / kLocBins};
      o.valid = ymax > ymin && xmax > xmin;
      o.seg_codes = std::move(codes);
      out.objects.push_back(std::move(o));
    } else {  // a truncated or overlong mask: the whole object, label included, is text
      append_text(out.text, s.substr(pos, label_end - pos));
    }
    plain_start = end;
    pos = s.find(kLocPrefix, end);
  }
  append_text(out.text, s.substr(plain_start));
  return out;
}

}  // namespace pg
