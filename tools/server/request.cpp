#include "request.h"

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>

#include "../common/decoding_options.h"
#include "paligemma/tasks.h"

namespace pg::server {

using nlohmann::json;

namespace {

// Standard base64 (whitespace allowed, padding optional); false when `in` is not base64.
bool decode_base64(const std::string& in, std::string& out) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.clear();
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0, padding = 0;
  size_t symbols = 0;
  for (char c : in) {
    if (c == '\r' || c == '\n' || c == ' ') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const size_t v = alphabet.find(c);
    if (v == std::string::npos || padding) return false;
    ++symbols;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  // One symbol left over is never base64; padding fills the last group to four symbols, no more.
  return symbols % 4 != 1 && padding <= 2 && (padding == 0 || (symbols + padding) % 4 == 0);
}

ImageRGB8 decode_image_bytes(const std::string& bytes, const std::string& name, const Limits& limits) {
  if (bytes.empty()) throw HttpError{400, "invalid_image", name + " is empty"};
  try {
    return decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name,
                               limits.max_image_pixels);
  } catch (const ImageTooLargeError& e) {
    throw HttpError{413, "image_too_large", e.what()};
  } catch (const Error& e) {
    throw HttpError{415, "unsupported_image", e.what()};
  }
}

// A base64 string or a data URL ("data:image/png;base64,..."). URLs and paths are refused: the server
// never fetches or opens what a client names. Whether a string is base64 is decided by decoding it, since
// base64 may start with '/' (every JPEG's does: "/9j/"); a '/' string whose bytes are no image reads as a path.
ImageRGB8 image_from_string(const std::string& s, const std::string& name, const Limits& limits) {
  const HttpError refused{400, "invalid_image",
                          name + " must be base64 or a data URL; the server does not fetch URLs or read files"};
  std::string bytes;
  if (s.rfind("data:", 0) == 0) {
    const size_t comma = s.find(',');
    if (comma == std::string::npos || s.substr(0, comma).find(";base64") == std::string::npos)
      throw HttpError{400, "invalid_image", name + " is a data URL without base64 data"};
    if (!decode_base64(s.substr(comma + 1), bytes))
      throw HttpError{400, "invalid_image", name + " is a data URL whose data is not valid base64"};
    return decode_image_bytes(bytes, name, limits);
  }
  const bool path_like = s.rfind("/", 0) == 0;
  if (!decode_base64(s, bytes)) {
    if (path_like || s.find(':') != std::string::npos) throw refused;
    throw HttpError{400, "invalid_image", name + " is not valid base64 (nor a data URL holding base64)"};
  }
  try {
    return decode_image_bytes(bytes, name, limits);
  } catch (const HttpError& e) {
    if (path_like && e.status == 415) throw refused;
    throw;
  }
}

template <typename T>
T field(const json& body, const char* key, T fallback, const char* what) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  const HttpError bad{400, "invalid_field", std::string("\"") + key + "\" must be " + what};
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // json's get<T>() casts any number, and a float outside T's range (1e300) is undefined behaviour.
    using limits = std::numeric_limits<T>;
    if (it->is_number_unsigned()) {
      if (it->get<uint64_t>() > uint64_t(limits::max())) throw bad;
    } else if (it->is_number_integer()) {
      const int64_t v = it->get<int64_t>();
      if (v < 0 ? v < int64_t(limits::min()) : uint64_t(v) > uint64_t(limits::max())) throw bad;
    } else if (it->is_number_float()) {
      const double v = it->get<double>(), bound = std::ldexp(1.0, limits::digits);  // exclusive, exact
      if (!(v == std::floor(v) && v < bound && v >= (limits::is_signed ? -bound : 0.0))) throw bad;
    } else {
      throw bad;
    }
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw bad;
  }
}

// An optional string member of an object: "" when missing, an error when not a string.
std::string string_member(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) return "";
  if (!it->is_string()) throw HttpError{400, "invalid_field", where + " \"" + key + "\" must be a string"};
  return it->get<std::string>();
}

void read_decoding(const json& body, Ask& ask, const Limits& limits, const char* max_tokens_key) {
  try {
    static_cast<DecodingOptions&>(ask.request) =
        tools::decoding_options_from_json(body, tools::DecodingLimits{limits.max_tokens}, max_tokens_key);
  } catch (const tools::DecodingOptionsError& e) {
    throw HttpError{400, "invalid_field", e.what()};
  }
  ask.stream = field<bool>(body, "stream", false, "true or false");
}

// Whether `key` is one of the decoding fields every endpoint takes.
bool is_decoding_key(const std::string& key) {
  const std::vector<std::string>& keys = tools::decoding_keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

json parse_json(const std::string& body) {
  try {
    json j = json::parse(body);
    if (!j.is_object()) throw HttpError{400, "invalid_json", "the request body must be a JSON object"};
    return j;
  } catch (const json::exception& e) {
    throw HttpError{400, "invalid_json", std::string("the request body is not valid JSON: ") + e.what()};
  }
}

void check_prompt(const std::string& prompt, const Limits& limits) {
  if (prompt.size() > limits.max_prompt_bytes)
    throw HttpError{413, "prompt_too_long", "the prompt is longer than " + std::to_string(limits.max_prompt_bytes) + " bytes"};
}

// The prompt of /v1/generate: "prompt" as given, or built from "task" (with "objects", "question", "lang")
// as `paligemma batch` and `generate --task` build it.
std::string prompt_of(const json& fields, const char* what) {
  const std::string quote = std::string(what) + (*what ? " \"" : "\"");
  auto text = [&](const char* key) {
    auto it = fields.find(key);
    if (it == fields.end() || it->is_null()) return std::string();
    if (!it->is_string()) throw HttpError{400, "invalid_field", quote + key + "\" must be a string"};
    return it->get<std::string>();
  };
  const bool has_prompt = fields.contains("prompt"), has_task = fields.contains("task");
  if (!has_prompt && !has_task)
    throw HttpError{400, "missing_prompt", quote + "prompt\" or \"task\" is required"};
  if (has_prompt && has_task) throw HttpError{400, "invalid_field", "give exactly one of \"prompt\" and \"task\""};
  for (const char* key : {"objects", "question", "lang"})
    if (fields.contains(key) && !has_task)
      throw HttpError{400, "invalid_field", quote + key + "\" applies to \"task\" only"};
  if (has_prompt) return text("prompt");
  TaskPromptRequest task;
  task.task = text("task");
  task.objects = text("objects");
  task.text = text("question");
  task.language = text("lang");
  try {
    return build_task_prompt(task);
  } catch (const Error& e) {
    throw HttpError{400, "invalid_task", e.what()};
  }
}

void check_image_count(size_t n, const Limits& limits) {
  if (n == 0) throw HttpError{400, "missing_image", "PaliGemma needs at least one image"};
  if (n > limits.max_images)
    throw HttpError{413, "too_many_images", "at most " + std::to_string(limits.max_images) + " images per request"};
}

}  // namespace

Ask parse_generate_json(const std::string& body, const Limits& limits) {
  const json j = parse_json(body);
  static const std::set<std::string> known = {"images", "prompt", "task", "objects", "question", "lang", "stream"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()) && !is_decoding_key(it.key())) throw HttpError{400, "unknown_field", "unknown field \"" + it.key() + "\""};
  Ask ask;
  auto images = j.find("images");
  if (images == j.end() || !images->is_array())
    throw HttpError{400, "missing_image", "\"images\" must be a list of base64 strings or data URLs"};
  check_image_count(images->size(), limits);
  for (size_t i = 0; i < images->size(); ++i) {
    if (!(*images)[i].is_string()) throw HttpError{400, "invalid_image", "images[" + std::to_string(i) + "] is not a string"};
    ask.request.images.push_back(
        image_from_string((*images)[i].get<std::string>(), "images[" + std::to_string(i) + "]", limits));
  }
  ask.request.prompt = prompt_of(j, "");
  check_prompt(ask.request.prompt, limits);
  read_decoding(j, ask, limits, "max_tokens");
  return ask;
}

Ask parse_generate_multipart(const httplib::Request& req, const Limits& limits) {
  json fields = json::object();
  std::vector<ImageRGB8> images;
  for (const auto& [name, part] : req.files) {
    if (name == "image" || name == "images") {
      images.size() < limits.max_images
          ? images.push_back(decode_image_bytes(part.content, part.filename.empty() ? "image" : part.filename, limits))
          : check_image_count(images.size() + 1, limits);
    } else if (name == "prompt" || name == "stop" || name == "task" || name == "objects" || name == "question" ||
               name == "lang") {
      fields[name] = part.content;
    } else if (name == "stream" || name == "ignore_eos") {
      fields[name] = part.content == "true" || part.content == "1";
    } else if (is_decoding_key(name)) {
      try {
        fields[name] = json::parse(part.content);
      } catch (const json::exception&) {
        throw HttpError{400, "invalid_field", "form field \"" + name + "\" must be a number"};
      }
    } else {
      throw HttpError{400, "unknown_field", "unknown form field \"" + name + "\""};
    }
  }
  check_image_count(images.size(), limits);
  Ask ask;
  ask.request.images = std::move(images);
  ask.request.prompt = prompt_of(fields, "form field");
  check_prompt(ask.request.prompt, limits);
  read_decoding(fields, ask, limits, "max_tokens");
  return ask;
}

namespace {

// OpenAI fields that front ends send with a value that changes nothing: accepted at that value (or null).
struct NeutralField {
  const char* key;
  const char* neutral;  // for the error message
  bool (*is_neutral)(const json&);
};
const NeutralField kNeutralFields[] = {
    {"n", "1", [](const json& v) { return v.is_number_integer() && v.get<int64_t>() == 1; }},
    {"frequency_penalty", "0", [](const json& v) { return v.is_number() && v.get<double>() == 0; }},
    {"presence_penalty", "0", [](const json& v) { return v.is_number() && v.get<double>() == 0; }},
    {"logprobs", "false", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }},
    {"store", "false", [](const json& v) { return v.is_boolean() && !v.get<bool>(); }},
    {"logit_bias", "{}", [](const json& v) { return v.is_object() && v.empty(); }},
    {"tools", "[]", [](const json& v) { return v.is_array() && v.empty(); }},
    {"tool_choice", "\"none\"", [](const json& v) { return v == "none"; }},
    {"parallel_tool_calls", "true or false (there are no tools)", [](const json& v) { return v.is_boolean(); }},
    {"response_format", "{\"type\": \"text\"}", [](const json& v) { return v == json{{"type", "text"}}; }},
    {"user", "a string (it changes nothing)", [](const json& v) { return v.is_string(); }},
};

void check_chat_fields(const json& j) {
  static const std::set<std::string> supported = {"messages", "model", "max_completion_tokens", "stream",
                                                  "stream_options"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (supported.count(it.key()) || is_decoding_key(it.key()) || it->is_null()) continue;
    const auto* f = std::find_if(std::begin(kNeutralFields), std::end(kNeutralFields),
                                 [&](const NeutralField& n) { return it.key() == n.key; });
    if (f == std::end(kNeutralFields))
      throw HttpError{400, "unsupported_field", "\"" + it.key() + "\" is not supported by this server"};
    if (!f->is_neutral(*it))
      throw HttpError{400, "unsupported_field", "\"" + it.key() + "\" is not supported by this server: only " +
                                                    f->neutral + " is accepted"};
  }
}

}  // namespace

Ask parse_chat(const std::string& body, const Limits& limits) {
  const json j = parse_json(body);
  check_chat_fields(j);
  auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array() || messages->empty())
    throw HttpError{400, "missing_messages", "\"messages\" must be a non-empty list"};
  Ask ask;
  const json* user = nullptr;
  size_t turns = 0;
  for (const json& m : *messages) {
    const std::string role = m.is_object() && m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "";
    // Front ends always send a system prompt; PaliGemma has none, so it is left out (and reported).
    if (role == "system" || role == "developer") {
      ++ask.ignored_system_messages;
      continue;
    }
    ++turns;
    if (role == "user") user = &m;
  }
  if (turns != 1 || !user)
    throw HttpError{400, "single_turn_only",
                    "PaliGemma is a single-turn model: send exactly one user message (text and images), "
                    "without earlier turns"};
  auto stream_options = j.find("stream_options");
  if (stream_options != j.end() && !stream_options->is_null()) {
    if (!stream_options->is_object())
      throw HttpError{400, "invalid_field", "\"stream_options\" must be an object"};
    for (auto it = stream_options->begin(); it != stream_options->end(); ++it)
      if (it.key() != "include_usage")
        throw HttpError{400, "unsupported_field", "\"stream_options." + it.key() + "\" is not supported by this server"};
    ask.include_usage = field<bool>(*stream_options, "include_usage", false, "true or false");
  }
  const json content = user->contains("content") ? (*user)["content"] : json();
  std::string text;
  auto add_text = [&](const std::string& t) { text += (text.empty() || t.empty() ? "" : " ") + t; };
  if (content.is_string()) {
    add_text(content.get<std::string>());
  } else if (content.is_array()) {
    for (const auto& part : content) {
      const std::string type = part.is_object() ? string_member(part, "type", "a content part's") : "";
      if (type == "text") {
        add_text(string_member(part, "text", "a text part's"));
      } else if (type == "image_url") {
        const json& u = part.contains("image_url") ? part["image_url"] : json();
        const std::string url =
            u.is_object() ? string_member(u, "url", "an image_url's") : (u.is_string() ? u.get<std::string>() : "");
        check_image_count(ask.request.images.size() + 1, limits);
        ask.request.images.push_back(
            image_from_string(url, "image " + std::to_string(ask.request.images.size() + 1), limits));
      } else {
        throw HttpError{400, "invalid_field", "message content parts must be of type \"text\" or \"image_url\""};
      }
    }
  } else {
    throw HttpError{400, "invalid_field", "message \"content\" must be a string or a list of parts"};
  }
  check_image_count(ask.request.images.size(), limits);
  ask.request.prompt = text;
  check_prompt(ask.request.prompt, limits);
  read_decoding(j, ask, limits, j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens");
  return ask;
}

}  // namespace pg::server
