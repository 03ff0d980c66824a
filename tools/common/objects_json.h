// Detection / segmentation objects as the command line and the server print them.
#pragma once
#include <nlohmann/json.hpp>

#include "paligemma/tasks.h"

namespace pg {

// The objects as a JSON array: {"label", "box": [x0, y0, x1, y1], "box_normalized": [...], "valid",
// "seg_codes" (segmentation only), "mask": {"size": [H, W], "counts": [...]} (when decoded)}.
nlohmann::json objects_json(const DecodedObjects& decoded);

}  // namespace pg
