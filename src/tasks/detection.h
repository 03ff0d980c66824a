// Detection / segmentation output of PaliGemma (big_vision/evaluators/proj/paligemma/transfers/segmentation.py):
// the decoded text "<locY0><locX0><locY1><locX1> label ; ..." (each object optionally with 16 <segNNN> after its
// locs) turned into objects with boxes in pixels of the original image.
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "paligemma/tasks.h"

namespace pg {

struct ParsedDetections {
  std::vector<DetectedObject> objects;  // in output order
  std::string text;                     // everything that is not part of an object, pieces joined by " "
};

// The parsing half of decode_objects (paligemma/tasks.h: the grammar); objects come without masks.
// Throws pg::Error only for width or height < 1.
ParsedDetections parse_detections(std::string_view text, int image_width, int image_height);

}  // namespace pg
