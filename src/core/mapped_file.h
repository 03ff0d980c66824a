// A whole file's bytes, read-only: memory-mapped, or copied into freshly allocated memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

enum class FileResidency {
  Mapped,  // a mapping of the file: pages come from the page cache, shared, nothing copied
  // A private copy in newly allocated anonymous memory (transparent huge pages where the kernel allows them),
  // read in parallel at open. Costs the copy and takes the memory out of the page cache's hands; on hosts where
  // long-cached pages read slowly (docs/benchmarks.md) it reads at the memory's full speed.
  Copied,
};

class MappedFile {
 public:
  // Throws pg::Error naming the file; with Copied also when the file exceeds the available memory.
  explicit MappedFile(const std::string& path, FileResidency residency = FileResidency::Mapped);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Faults every page of `files` into this process's page tables now (reading it from disk where it is not
// cached), with the OpenMP worker threads, so that the first pass over the weights does not pay for page
// faults. Skipped when the files together exceed the memory Linux reports available (MemAvailable), as it
// would only evict pages already read; then the returned text says so (empty when the pages were faulted).
std::string prefault_mapped_files(const std::vector<const MappedFile*>& files);

}  // namespace pg
