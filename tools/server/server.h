// `paligemma serve`: an HTTP server over one loaded model (JSON API, OpenAI-compatible chat endpoint,
// server-sent events, a browser page), with continuous batching across requests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "paligemma/engine.h"

namespace pg {
class MaskDecoder;
}

namespace pg::server {

struct Limits {
  size_t max_body_bytes = size_t{32} << 20;  // request body
  size_t max_image_pixels = 50'000'000;      // per decoded image (decompression bombs)
  size_t max_images = 16;                    // per request
  int64_t max_tokens = 1024;                 // per request
  size_t max_queue = 64;                     // requests waiting for a batch slot before 503
  size_t max_batch = 8;                      // sequences decoded together
  size_t max_prompt_bytes = 8192;
};

struct Options {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;
  std::string api_key;             // non-empty: /v1/* needs "Authorization: Bearer KEY"
  std::string model_name;          // shown by /v1/models
  bool quiet = false;              // no log line per request on stderr
  Limits limits;
};

// Why host:port cannot be listened on ("port 8080 is in use", ...), or empty when it can. `serve` asks
// before loading the model, so that a busy port fails at once rather than after the load.
std::string bind_problem(const std::string& host, int port);

// Serves until SIGINT or SIGTERM; returns the process exit code. Prints on stderr the listening address, a
// line per request unless options.quiet, and the number of requests served when it stops.
// mask_decoder (optional, the VQ-VAE of --vae) turns segmentation output into masks.
int serve(const Engine& engine, const MaskDecoder* mask_decoder, const Options& options);

}  // namespace pg::server
