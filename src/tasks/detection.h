// Detection / segmentation output of PaliGemma (docs/paligemma-spec.md §9, §10.1): the decoded text
// "<locY0><locX0><locY1><locX1> label ; ..." (each object optionally with 16 <segNNN> after its locs)
// turned into objects with boxes in pixels of the original image.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "model/mask_decoder.h"

namespace pg {

constexpr int kLocBins = 1024;         // <loc0000> ... <loc1023>

// A box in pixels: columns x0 <= x < x1, rows y0 <= y < y1 (end exclusive, like a PIL box and numpy
// slices) — as the model emitted it, so x1 < x0 or y1 < y0 can happen for an invalid object.
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

struct DetectedObject {
  std::string label;                       // trimmed; may be empty (e.g. RefCOCO-style output) or non-ASCII UTF-8
  std::array<int, 4> bins{};               // as emitted: ymin, xmin, ymax, xmax, each in [0, 1023]
  PixelBox box;                            // round(bin / 1024 * side), Python rounding (half to even)
  std::array<double, 4> box_normalized{};  // x0, y0, x1, y1 = bin / 1024
  // big_vision's validity rule (segmentation evaluator): ymax > ymin and xmax > xmin in bins.
  bool valid = false;
  std::vector<int> seg_codes;  // empty, or the 16 mask codes (4x4 grid, row-major) of segmentation output
};

struct ParsedDetections {
  std::vector<DetectedObject> objects;  // in output order
  std::string text;                     // everything that is not part of an object, pieces joined by " "
};

// Parses decoded text (the <locNNNN>/<segNNN> pieces verbatim, as the tokenizer's decode keeps them) for an
// original image of width x height pixels. Never fails on model output: an object is 4 consecutive loc
// pieces, then optional white space, then optionally exactly 16 consecutive seg pieces, then optional
// white space, then a label (the longest run without ';', '<' or '>', trimmed), then optional white space
// and one optional ';'. Whatever does not fit this — fewer than 4 locs (a truncated object), a seg run
// that is not exactly 16 long (with its locs and label), loc/seg pieces out of range, garbage between
// objects — is returned in `text`. Throws pg::Error only for width or height < 1.
ParsedDetections parse_detections(std::string_view text, int image_width, int image_height);

// Whether the text contains at least one <locNNNN> piece (so it is worth parsing).
bool has_loc_tokens(std::string_view text);

}  // namespace pg
