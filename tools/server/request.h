// Requests of `paligemma serve`: the JSON (and multipart) bodies of /v1/generate and /v1/chat/completions,
// checked against the server's limits and turned into an Ask. Touches no model and no file: the fuzz target
// tests/fuzz/server_request_fuzzer.cpp feeds it arbitrary bodies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "paligemma/engine.h"
#include "server.h"

namespace httplib {
struct Request;
}

namespace pg::server {

// An answer other than 200: status, machine-readable code, message for people.
struct HttpError {
  int status;
  std::string code;
  std::string message;
};

// What a client asked for, whatever the endpoint.
struct Ask {
  GenerateRequest request;  // images, prompt and decoding options (tools/common/decoding_options.h)
  bool stream = false;
  // Chat completions only: stream_options.include_usage, and the system messages left out of the prompt.
  bool include_usage = false;
  size_t ignored_system_messages = 0;
};

// POST /v1/generate with a JSON body; throws HttpError.
Ask parse_generate_json(const std::string& body, const Limits& limits);

// POST /v1/generate as multipart/form-data: image files in "image" (repeatable), other fields as text.
Ask parse_generate_multipart(const httplib::Request& req, const Limits& limits);

// POST /v1/chat/completions: one user message with text and image_url parts, after any system messages
// (ignored). OpenAI fields the server cannot honour are a 400 naming them, unless at a value that changes
// nothing (frequency_penalty 0, tools [], ...).
Ask parse_chat(const std::string& body, const Limits& limits);

}  // namespace pg::server
