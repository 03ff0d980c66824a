// Helpers shared by the unit tests.
#pragma once
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "kernels/cpu_features.h"
#include "core/dtype.h"
#include "kernels/quant.h"
#include "paligemma/error.h"

namespace pg {

// Readable parameter names in test listings (gtest finds these by argument-dependent lookup, so they live in
// the types' namespace).
inline void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }
inline void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }
inline void PrintTo(QuantType t, std::ostream* os) { *os << quant_type_name(t); }

}  // namespace pg

namespace pg::test {

// Puts back the kernels' instruction-set level that was active when it was made (tests that switch levels).
class RestoreActiveIsa {
 public:
  RestoreActiveIsa() : saved_(active_isa()) {}
  ~RestoreActiveIsa() { set_active_isa(saved_); }
  RestoreActiveIsa(const RestoreActiveIsa&) = delete;
  RestoreActiveIsa& operator=(const RestoreActiveIsa&) = delete;

 private:
  Isa saved_;
};

// A fresh, uniquely named directory under the system's temporary directory, removed with everything in it
// when the object goes out of scope. The one place tests make temporary files: cleanup happens even when an
// ASSERT returns from the test early, and parallel runs never share a name.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "pg_test_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      const int error = errno;  // before building the message, which may change errno
      throw std::runtime_error("cannot create a temporary directory " + pattern + ": " + std::strerror(error));
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  // Writes bytes (any contiguous byte container) to a file of this directory and returns its path.
  template <typename Bytes>
  std::filesystem::path write(const std::string& name, const Bytes& bytes) const {
    const std::filesystem::path p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + p.string());
    return p;
  }

 private:
  std::filesystem::path path_;
};

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

// Where row m of product(x, M) differs from product(x row m, 1): "row R column C: BATCHED vs ALONE" for the
// first such value, "" when every row equals its product alone bit for bit. x is [M, K]; product(x, rows, y)
// writes rows x N values.
inline std::string first_row_unlike_alone(const std::vector<float>& x, int64_t M, int64_t K, int64_t N,
                                          const std::function<void(const float*, int64_t, float*)>& product) {
  std::vector<float> batched(static_cast<size_t>(M * N)), alone(static_cast<size_t>(N));
  product(x.data(), M, batched.data());
  for (int64_t m = 0; m < M; ++m) {
    product(x.data() + m * K, 1, alone.data());
    for (int64_t n = 0; n < N; ++n)
      if (batched[static_cast<size_t>(m * N + n)] != alone[static_cast<size_t>(n)])
        return "row " + std::to_string(m) + " column " + std::to_string(n) + ": " +
               std::to_string(batched[static_cast<size_t>(m * N + n)]) + " vs " + std::to_string(alone[static_cast<size_t>(n)]);
  }
  return "";
}

}  // namespace pg::test
