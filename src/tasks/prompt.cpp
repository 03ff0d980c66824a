#include "tasks/prompt.h"

#include "paligemma/error.h"

namespace pg {

std::vector<int32_t> build_prompt_ids(const Tokenizer& tokenizer, int32_t image_token_id, int64_t image_tokens,
                                      const std::string& prompt) {
  if (prompt.find("<image>") != std::string::npos)
    throw Error("the prompt contains \"<image>\"; pass images as files instead, the engine inserts their tokens");
  std::vector<int32_t> ids(size_t(image_tokens), image_token_id);
  ids.push_back(tokenizer.bos_id());
  const std::vector<int32_t> text = tokenizer.encode(prompt + "\n");
  ids.insert(ids.end(), text.begin(), text.end());
  return ids;
}

}  // namespace pg
