// A read-only memory mapping of a whole file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pg {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws pg::Error naming the file
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
