// Pre-faulting memory-mapped weights at load, and weights copied into memory instead (src/core/mapped_file.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "paligemma/error.h"
#include "test_util.h"

namespace {

// What /proc/self/smaps says of the mapping that starts at `start`: its path column ("" for anonymous memory)
// and its bytes in this process's page tables ("Rss"); "?" and -1 if no mapping starts there.
struct Mapping {
  std::string path = "?";
  int64_t resident_bytes = -1;
};

Mapping mapping_at(const void* start) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  Mapping found;
  bool in_mapping = false;
  while (std::getline(smaps, line)) {
    unsigned long long begin = 0;
    int path_at = -1;
    // A mapping's header line "begin-end perms offset dev inode [path]" (%n is reached only on a whole header);
    // its fields follow as "Key: value" lines.
    if (std::sscanf(line.c_str(), "%llx-%*x %*s %*s %*s %*s %n", &begin, &path_at) == 1 && path_at >= 0) {
      if (in_mapping) break;
      in_mapping = begin == reinterpret_cast<uintptr_t>(start);
      if (in_mapping) found.path = size_t(path_at) < line.size() ? line.substr(size_t(path_at)) : "";
      continue;
    }
    if (in_mapping && line.rfind("Rss:", 0) == 0) {
      std::istringstream fields(line.substr(4));
      int64_t kib = -1;
      fields >> kib;
      found.resident_bytes = kib * 1024;
    }
  }
  return found;
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
    EXPECT_EQ(mapping_at(file.data()).resident_bytes, 0);  // mapped, never touched
    EXPECT_EQ(pg::prefault_mapped_files({&file}), "");
    EXPECT_EQ(mapping_at(file.data()).resident_bytes, int64_t((size + page - 1) / page * page));
    for (size_t i : {size_t(0), size_t(4096), size / 2, size - 1}) EXPECT_EQ(file.data()[i], uint8_t(i * 7 + 3));
  }
}

TEST(CopiedFile, HoldsTheFileBytesInAnonymousMemory) {
  const pg::test::TempDir tmp;
  const std::string path = (tmp / "weights.bin").string();
  // More than one 64 MB read piece, the last one partial.
  std::vector<char> bytes((size_t(64) << 20) + 4097);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char(i * 13 + i / 4096);
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));

  const pg::MappedFile mapped(path);
  const pg::MappedFile copied(path, pg::FileResidency::Copied);
  ASSERT_EQ(copied.size(), bytes.size());
  EXPECT_EQ(std::memcmp(copied.data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(mapping_at(mapped.data()).path, path);
  EXPECT_EQ(mapping_at(copied.data()).path, "");  // not the file's pages
  EXPECT_EQ(mapping_at(copied.data()).resident_bytes, int64_t((bytes.size() + 4095) / 4096 * 4096));
}

TEST(CopiedFile, EmptyAndMissingFiles) {
  const pg::test::TempDir tmp;
  const std::string empty = (tmp / "empty.bin").string();
  std::ofstream(empty).close();
  EXPECT_EQ(pg::MappedFile(empty, pg::FileResidency::Copied).size(), 0u);
  EXPECT_THROW(pg::MappedFile((tmp / "missing.bin").string(), pg::FileResidency::Copied), pg::Error);
}

}  // namespace
