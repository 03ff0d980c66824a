// The readers of safetensors, GGUF and .npz files take a path and memory-map it (core/mapped_file.h), so their
// fuzz targets write each input to a scratch file first: the real code path, mapping included, with no
// memory-only entry point added to the library for the fuzzers' sake.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace pg::fuzz {

class ScratchFile {
 public:
  // One file per process (libFuzzer's -jobs/-fork run several), removed when the process ends normally.
  // In /dev/shm where there is one: rewriting a file per input on a disk-backed temporary directory made
  // these targets some 40 times slower.
  explicit ScratchFile(const std::string& suffix)
      : path_((directory() / ("pg_fuzz_" + std::to_string(::getpid()) + suffix)).string()) {}
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with the input; a failure here is the machine's, not the reader's.
  const std::string& write(const uint8_t* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }

 private:
  static std::filesystem::path directory() {
    std::error_code ec;
    if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path();
  }

  std::string path_;
};

}  // namespace pg::fuzz
