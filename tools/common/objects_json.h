// Results as the tools print them: detection / segmentation objects (command line, server, Python) and the
// result line of `paligemma batch` (which the Python module's labelling jobs write too).
#pragma once
#include <nlohmann/json.hpp>

#include "paligemma/engine.h"
#include "paligemma/tasks.h"

namespace pg {

// The objects as a JSON array: {"label", "box": [x0, y0, x1, y1], "box_normalized": [...], "valid",
// "seg_codes" (segmentation only), "mask": {"size": [H, W], "counts": [...]} (when decoded)}.
nlohmann::json objects_json(const DecodedObjects& decoded);

// A result line of `paligemma batch` without its "id": "text", "tokens", "finish_reason", "score" (beam
// search only), "objects" (when the text has <loc> tokens) and "timings" (docs/cli.md "batch").
nlohmann::ordered_json batch_result_json(const GenerateResult& result, bool beam_search);

}  // namespace pg
