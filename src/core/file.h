// Opening files a user named: only regular files, so that a FIFO, a device or a directory given by
// mistake is a clear error instead of a process blocked in open() or reading endless bytes.
#pragma once
#include <string>
#include <string_view>

#include "paligemma/system.h"  // read_regular_file

namespace pg {

// A read-only descriptor of the regular file `path` (opened without blocking, then checked); throws
// pg::Error naming `what` and the path. The caller closes it.
int open_regular_file(const std::string& path, const std::string& what);

// The same check for a file that a library opens by name itself (SentencePiece, FFmpeg).
void check_regular_file(const std::string& path, const std::string& what);


// Bytes in an anonymous in-memory file, named /proc/self/fd/N while this object lives: for libraries that
// only load by path (SentencePiece, the .npz reader) given a file a GGUF carries.
class MemoryFile {
 public:
  // `what` names the contents in errors.
  MemoryFile(std::string_view bytes, const std::string& what);
  ~MemoryFile();
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace pg
