// Opening files a user named: only regular files, so that a FIFO, a device or a directory given by
// mistake is a clear error instead of a process blocked in open() or reading endless bytes.
#pragma once
#include <string>

namespace pg {

// A read-only descriptor of the regular file `path` (opened without blocking, then checked); throws
// pg::Error naming `what` and the path. The caller closes it.
int open_regular_file(const std::string& path, const std::string& what);

// The same check for a file that a library opens by name itself (SentencePiece, FFmpeg).
void check_regular_file(const std::string& path, const std::string& what);

// The whole regular file.
std::string read_regular_file(const std::string& path, const std::string& what);

}  // namespace pg
