// Fuzz target: an input file of `paligemma batch`, one request per line. Lines share the set of seen ids,
// as in a real run (blank lines skipped), and each one that reads as a request is then checked by parse_request.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "batch_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::set<std::string> seen_ids;
  size_t line_number = 0;
  for (size_t begin = 0; begin <= text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // batch skips blank lines
    const pg::cli::Pending p = pg::cli::read_request_line(line, line_number, seen_ids);
    if (p.error) continue;
    try {
      (void)pg::cli::parse_request(p.request);
    } catch (const pg::cli::RequestError&) {
    }
  }
  return 0;
}
