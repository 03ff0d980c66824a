#include "paligemma/decoding.h"

#include <algorithm>

namespace pg {

size_t stop_position(const std::string& text, const std::vector<std::string>& stops) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) first = std::min(first, text.find(s));
  return first;
}

}  // namespace pg
