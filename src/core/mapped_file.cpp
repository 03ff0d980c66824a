#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/file.h"
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

// The file's `size` bytes in new anonymous memory, read with all OpenMP threads in pieces of kPrefaultPiece.
const uint8_t* copy_into_memory(int fd, const std::string& path, size_t size) {
  const size_t available = available_memory_bytes();
  if (available != 0 && size > available)
    throw Error("cannot copy " + path + " (" + gigabytes(size) + ") into memory: only " + gigabytes(available) +
                " is available; load it memory-mapped instead");
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("cannot allocate " + gigabytes(size) + " for " + path + ": " + std::strerror(errno));
  ::madvise(p, size, MADV_HUGEPAGE);  // a hint: fewer TLB misses where transparent huge pages are allowed
  uint8_t* bytes = static_cast<uint8_t*>(p);
  const size_t pieces = (size + kPrefaultPiece - 1) / kPrefaultPiece;
  std::atomic<int> error{0};  // errno of a failed read, or -1 when the file ended early
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < pieces; ++i) {
    size_t offset = i * kPrefaultPiece;
    const size_t end = std::min(size, offset + kPrefaultPiece);
    while (offset < end && error.load() == 0) {
      const ssize_t n = ::pread(fd, bytes + offset, end - offset, off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = n < 0 ? errno : -1;
        break;
      }
      offset += size_t(n);
    }
  }
  if (error != 0) {
    ::munmap(p, size);
    throw Error("cannot read " + path + ": " +
                (error > 0 ? std::string(std::strerror(error)) : "it ended early (changed while loading?)"));
  }
  ::mprotect(p, size, PROT_READ);
  return bytes;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, FileResidency residency) : path_(path) {
  const int fd = open_regular_file(path, "file");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot read " + path + ": " + std::strerror(errno));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0 && residency == FileResidency::Copied) {
    try {
      data_ = copy_into_memory(fd, path, size_);
    } catch (...) {
      ::close(fd);
      throw;
    }
  } else if (size_ > 0) {
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
