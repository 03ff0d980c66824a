#include "batch_request.h"

#include <algorithm>
#include <cstdint>

#include "../common/decoding_options.h"
#include "paligemma/tasks.h"

namespace pg::cli {

using nlohmann::json;

namespace {

// The request's own keys; the decoding ones come from tools/common/decoding_options.h.
const std::set<std::string> kKeys = {"id",   "image",   "images",   "video", "frames",
                                     "prompt", "task", "objects", "question", "lang"};

[[noreturn]] void bad_request(const std::string& message) { throw RequestError{"bad_request", message}; }

const json* find(const json& request, const char* key) {
  auto it = request.find(key);
  return it == request.end() ? nullptr : &*it;
}

std::string get_string(const json& request, const char* key) {
  const json* v = find(request, key);
  if (!v) return "";
  if (!v->is_string()) bad_request(std::string("\"") + key + "\" must be a string");
  return v->get<std::string>();
}

int64_t get_int(const json& request, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = find(request, key);
  if (!v) return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi ||
      (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)))
    bad_request(std::string("\"") + key + "\" must be a whole number from " + std::to_string(lo) + " to " +
                std::to_string(hi));
  return v->get<int64_t>();
}

std::vector<std::string> get_strings(const json& request, const char* key) {
  const json* v = find(request, key);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array() || v->empty())
    bad_request(std::string("\"") + key + "\" must be a string or a non-empty array of strings");
  std::vector<std::string> out;
  for (const json& e : *v) {
    if (!e.is_string()) bad_request(std::string("\"") + key + "\" must hold strings only");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

BatchRequest parse_request(const json& request) {
  if (!request.is_object()) bad_request("a request must be a JSON object");
  const std::vector<std::string>& decoding = tools::decoding_keys();
  for (const auto& [key, value] : request.items())
    if (!kKeys.count(key) && std::find(decoding.begin(), decoding.end(), key) == decoding.end())
      bad_request("unknown key \"" + key + "\"");

  BatchRequest out;
  GenerateRequest& req = out.generate;
  const int sources = int(request.contains("image")) + int(request.contains("images")) + int(request.contains("video"));
  if (sources != 1) bad_request("give exactly one of \"image\", \"images\" and \"video\"");
  if (request.contains("frames") && !request.contains("video")) bad_request("\"frames\" applies to \"video\" only");
  if (request.contains("prompt") == request.contains("task"))
    bad_request("give exactly one of \"prompt\" and \"task\"");
  for (const char* key : {"objects", "question", "lang"})
    if (request.contains(key) && !request.contains("task"))
      bad_request(std::string("\"") + key + "\" applies to \"task\" only");

  if (request.contains("prompt")) {
    req.prompt = get_string(request, "prompt");
  } else {
    TaskPromptRequest task;
    task.task = get_string(request, "task");
    task.objects = get_string(request, "objects");
    task.text = get_string(request, "question");
    task.language = get_string(request, "lang");
    try {
      req.prompt = build_task_prompt(task);
    } catch (const Error& e) {
      bad_request(e.what());
    }
  }
  try {
    static_cast<DecodingOptions&>(req) = tools::decoding_options_from_json(request);
  } catch (const tools::DecodingOptionsError& e) {
    bad_request(e.what());
  }
  if (request.contains("video")) {
    out.video_path = get_string(request, "video");
    out.frames = int(get_int(request, "frames", 16, 1, 1024));
  } else {
    out.image_paths = get_strings(request, request.contains("image") ? "image" : "images");
  }
  return out;
}

Pending read_request_line(const std::string& line, size_t line_number, std::set<std::string>& seen_ids,
                          size_t max_line_bytes) {
  const std::string n = std::to_string(line_number);
  std::string line_id = n;
  line_id.insert(line_id.begin(), '#');  // (not "#" + ...: GCC 12 warns falsely, -Wrestrict)
  Pending p{line_number, line_id, json(), std::nullopt};
  if (line.size() > max_line_bytes) {
    // Not parsed at all: its size alone says it is no request (a prompt of that size cannot fit the model).
    p.error = RequestError{"line_too_long", "line " + n + " is " + std::to_string(line.size()) +
                                                " bytes, over the limit of " + std::to_string(max_line_bytes) +
                                                " (--max-line-bytes)"};
    return p;
  }
  json request = json::parse(line, nullptr, false);
  if (request.is_discarded()) {
    p.error = RequestError{"bad_json", "line " + n + " is not valid JSON"};
  } else if (!request.is_object()) {
    p.error = RequestError{"bad_request", "line " + n + " is not a JSON object"};
  } else if (!request.contains("id") || !(request["id"].is_string() || request["id"].is_number_integer())) {
    p.error = RequestError{"bad_request", "line " + n + " has no \"id\" (a string or whole number)"};
  } else if (request["id"].is_string() && request["id"].get<std::string>().rfind('#', 0) == 0) {
    p.error = RequestError{"bad_request", "line " + n + ": ids starting with '#' are reserved"};
  } else if (seen_ids.count(request["id"].dump())) {
    p.error = RequestError{"duplicate_id", "line " + n + " repeats the id " + request["id"].dump()};
  } else {
    p.id = request["id"];
    seen_ids.insert(p.id.dump());
    p.request = std::move(request);
  }
  return p;
}

}  // namespace pg::cli
