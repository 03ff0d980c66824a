// Fuzz target: a model's config.json text turned into PaliGemmaConfig.
#include <cstddef>
#include <cstdint>
#include <string>

#include "loader/config_json.h"
#include "paligemma/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)pg::parse_config_json(std::string(reinterpret_cast<const char*>(data), size), "config.json");
  } catch (const pg::Error&) {
  }
  return 0;
}
