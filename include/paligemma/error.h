// Errors the library reports to its callers. Every failure a user can cause (bad files, bad images,
// bad arguments) is thrown as pg::Error with a message that says what is wrong and what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace pg {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace pg
