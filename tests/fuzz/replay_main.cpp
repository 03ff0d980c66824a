// Replays a fuzz target's inputs without libFuzzer, so that ordinary builds (GCC, Release, PG_SANITIZE)
// run the committed corpus and regressions as tests: `<target>_replay DIR...` feeds every regular file
// under each DIR (recursively, in name order) to LLVMFuzzerTestOneInput once. A missing or empty DIR is an
// error, so that a wrong path in CMake cannot make the test pass without running anything.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIR...\n", argv[0]);
    return 2;
  }
  size_t total = 0;
  for (int i = 1; i < argc; ++i) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(argv[i], ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file()) files.push_back(it->path());
    if (ec || files.empty()) {
      std::fprintf(stderr, "%s: no inputs in %s%s%s\n", argv[0], argv[i], ec ? ": " : "",
                   ec ? ec.message().c_str() : "");
      return 2;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        std::fprintf(stderr, "%s: cannot read %s\n", argv[0], f.c_str());
        return 2;
      }
      // libFuzzer never passes a null pointer; keep that for empty files too.
      static const uint8_t empty = 0;
      std::printf("%s\n", f.c_str());  // names the input if it crashes
      std::fflush(stdout);
      LLVMFuzzerTestOneInput(bytes.empty() ? &empty : reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++total;
    }
  }
  std::printf("replayed %zu inputs\n", total);
  return 0;
}
