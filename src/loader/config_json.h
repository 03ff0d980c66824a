// Reads a hub config.json into PaliGemmaConfig. Keys the hub's files leave out take the defaults that
// transformers' PaliGemmaConfig / GemmaConfig / Gemma2Config / SiglipVisionConfig give them.
#pragma once
#include <string>

#include "model/config.h"

namespace pg {

PaliGemmaConfig parse_config_json(const std::string& text, const std::string& source_name);
PaliGemmaConfig load_config_file(const std::string& path);

}  // namespace pg
