// Helpers shared by the unit tests.
#pragma once
#include <exception>
#include <functional>
#include <string>

#include "paligemma/error.h"

namespace pg::test {

// The message of the pg::Error that f throws; "no error" when it throws nothing, and a message marked
// "NOT pg::Error" when it throws something else (user-facing failures must be pg::Error).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT pg::Error: ") + e.what();
  }
  return "no error";
}

}  // namespace pg::test
