// Request lines of `paligemma batch`: one JSON object per line, checked and turned into a GenerateRequest
// without touching the model or any file (the fuzz target tests/fuzz/batch_line_fuzzer.cpp feeds it
// arbitrary bytes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "paligemma/engine.h"

namespace pg::cli {

// A request line that cannot be served; becomes {"id", "error": {"code", "message"}}.
struct RequestError {
  std::string code;
  std::string message;
};

// One input line with the id its result carries.
struct Pending {
  size_t line_number;  // 1-based
  nlohmann::json id;
  nlohmann::json request;             // discarded when `error` is set
  std::optional<RequestError> error;  // known before any model work
};

// The id of a non-blank line: its "id" (a string or whole number) when it parses and that id is not in
// `seen_ids` (which then receives it), else "#<line number>" (bad JSON, no usable id, a line over
// `max_line_bytes`: an error result; a repeated id: a duplicate_id error result). Ids starting with '#' are
// reserved for these.
Pending read_request_line(const std::string& line, size_t line_number, std::set<std::string>& seen_ids,
                          size_t max_line_bytes = SIZE_MAX);

// What one request asks for; the images are named, not yet read.
struct BatchRequest {
  GenerateRequest generate;                // prompt and decoding options; no images
  std::vector<std::string> image_paths;    // "image" / "images" as written (relative to the input file);
                                           // empty for a video
  std::string video_path;                  // "video"
  int frames = 16;                         // "frames" of the video
};

// Checks a request object's keys and values; throws RequestError.
BatchRequest parse_request(const nlohmann::json& request);

}  // namespace pg::cli
