#include "core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "paligemma/error.h"

namespace pg {

namespace {

[[noreturn]] void not_regular(const std::string& path, const std::string& what, mode_t mode) {
  const char* kind = S_ISDIR(mode) ? " (a directory)" : S_ISFIFO(mode) ? " (a FIFO)" : S_ISSOCK(mode) ? " (a socket)"
                     : S_ISCHR(mode) || S_ISBLK(mode) ? " (a device)" : "";
  throw Error("cannot read " + what + " " + path + ": not a regular file" + kind + "; give the path of a file");
}

}  // namespace

int open_regular_file(const std::string& path, const std::string& what) {
  // O_NONBLOCK: opening a FIFO that has no writer returns at once (it would wait for one otherwise); it
  // changes nothing for the regular files that pass the check.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open " + what + " " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const mode_t mode = st.st_mode;
    ::close(fd);
    not_regular(path, what, mode);
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

void check_regular_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error("cannot open " + what + " " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) not_regular(path, what, st.st_mode);
}

MemoryFile::MemoryFile(std::string_view bytes, const std::string& what) {
  fd_ = ::memfd_create(what.c_str(), MFD_CLOEXEC);
  if (fd_ < 0) throw Error("cannot create an in-memory file for " + what + ": " + std::strerror(errno));
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd_);
      throw Error("cannot write " + what + " to memory: " + std::strerror(err));
    }
    done += size_t(n);
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemoryFile::~MemoryFile() { ::close(fd_); }

std::string read_regular_file(const std::string& path, const std::string& what) {
  const int fd = open_regular_file(path, what);
  std::string out;
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error("cannot read " + what + " " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(chunk, size_t(n));
  }
  ::close(fd);
  return out;
}

}  // namespace pg
