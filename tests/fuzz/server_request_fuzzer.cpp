// Fuzz target: a request body of `paligemma serve`, read as POST /v1/generate (JSON) and as
// POST /v1/chat/completions. Images inside (base64, data URLs) reach the image decoders too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "paligemma/error.h"
#include "request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  pg::server::Limits limits;
  limits.max_image_pixels = size_t{1} << 20;  // small images decode fast under the sanitizers
  try {
    (void)pg::server::parse_generate_json(body, limits);
  } catch (const pg::server::HttpError&) {
  }
  try {
    (void)pg::server::parse_chat(body, limits);
  } catch (const pg::server::HttpError&) {
  }
  return 0;
}
