#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "paligemma/error.h"

namespace pg {

namespace {

// MemAvailable of /proc/meminfo in bytes (Linux's estimate of what can be had without swapping); 0 if unknown.
size_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  size_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    std::getline(in, unit);
  }
  return 0;
}

// Pre-faulting works on pieces of this size, so that all threads take part and a disk read of one piece
// overlaps the page-table work of the others.
constexpr size_t kPrefaultPiece = size_t(64) << 20;

// Where the read pass of prefault_range leaves its result, so that the compiler keeps the reads.
volatile uint8_t prefault_sink;

void prefault_range(const uint8_t* begin, size_t size) {
  void* p = const_cast<uint8_t*>(begin);
  if (::madvise(p, size, MADV_POPULATE_READ) == 0) return;
  // Linux before 5.14 has no MADV_POPULATE_READ: ask for read-ahead, then read one byte of every page.
  ::madvise(p, size, MADV_WILLNEED);
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  uint8_t sum = 0;
  for (size_t offset = 0; offset < size; offset += page) sum ^= begin[offset];
  prefault_sink = sum;
}

std::string gigabytes(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GB", double(bytes) / 1e9);
  return text;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + " is not a readable regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error("cannot memory-map " + path + ": " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::string prefault_mapped_files(const std::vector<const MappedFile*>& files) {
  struct Piece {
    const uint8_t* begin;
    size_t size;
  };
  std::vector<Piece> pieces;
  size_t total = 0;
  for (const MappedFile* f : files) {
    total += f->size();
    for (size_t offset = 0; offset < f->size(); offset += kPrefaultPiece)
      pieces.push_back({f->data() + offset, std::min(kPrefaultPiece, f->size() - offset)});
  }
  const size_t available = available_memory_bytes();
  if (available != 0 && total > available)
    return "not pre-faulting the " + gigabytes(total) + " of weights: only " + gigabytes(available) +
           " of memory is available, so they are read from disk as they are first used";
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < pieces.size(); ++i) prefault_range(pieces[i].begin, pieces[i].size);
  return "";
}

}  // namespace pg
