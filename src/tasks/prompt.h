// The PaliGemma input layout: [image tokens of every image, image-major] <bos> prompt "\n".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pg {

// Ids of the full prefix. The prompt is tokenized together with its "\n" separator, as the reference
// processor does; a prompt holding a literal "<image>" is rejected (images are passed separately).
std::vector<int32_t> build_prompt_ids(const Tokenizer& tokenizer, int32_t image_token_id, int64_t image_tokens,
                                      const std::string& prompt);

}  // namespace pg
