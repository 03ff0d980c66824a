// Pre-faulting memory-mapped weights at load (src/io/mapped_file.cpp prefault_mapped_files).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/mapped_file.h"
#include "test_util.h"

namespace {

// Bytes of the mapping that starts at `start` that are in this process's page tables ("Rss" in
// /proc/self/smaps); -1 if the mapping is not listed.
int64_t resident_bytes(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  while (std::getline(smaps, line)) {
    unsigned long long begin = 0, end = 0;
    // A mapping's header line "begin-end perms ..."; its fields follow as "Key: value" lines.
    if (std::sscanf(line.c_str(), "%llx-%llx ", &begin, &end) == 2) {
      in_mapping = begin == reinterpret_cast<uintptr_t>(start);
      continue;
    }
    if (in_mapping && line.rfind("Rss:", 0) == 0) {
      std::istringstream fields(line.substr(4));
      int64_t kib = -1;
      fields >> kib;
      return kib * 1024;
    }
  }
  return -1;
}

TEST(Prefault, PutsEveryPageOfTheFilesInThePageTables) {
  const pg::test::TempDir tmp;
  const std::string path = (tmp / "weights.bin").string();
  const size_t size = (size_t(5) << 20) + 123;  // not a whole number of pages
  {
    std::ofstream out(path, std::ios::binary);
    for (size_t i = 0; i < size; ++i) out.put(char(i * 7 + 3));
  }
  {
    pg::MappedFile file(path);
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    EXPECT_EQ(resident_bytes(file.data()), 0);  // mapped, never touched
    EXPECT_EQ(pg::prefault_mapped_files({&file}), "");
    EXPECT_EQ(resident_bytes(file.data()), int64_t((size + page - 1) / page * page));
    for (size_t i : {size_t(0), size_t(4096), size / 2, size - 1}) EXPECT_EQ(file.data()[i], uint8_t(i * 7 + 3));
  }
}

}  // namespace
