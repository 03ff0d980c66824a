// NumPy .npz archives as np.savez / np.savez_compressed write them: a zip file (zip64 extensions
// included) of .npy members, stored or deflated (zlib).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/npy.h"

namespace pg {

class MappedFile;

class NpzFile {
 public:
  // Reads the archive's directory. Throws pg::Error naming the file when it is missing, not a zip archive,
  // truncated, encrypted or uses a compression other than stored/deflate.
  explicit NpzFile(const std::string& path);
  ~NpzFile();
  NpzFile(const NpzFile&) = delete;
  NpzFile& operator=(const NpzFile&) = delete;

  const std::string& path() const;
  std::vector<std::string> keys() const;  // member names without ".npy", in archive order
  bool contains(const std::string& key) const;
  // The float32 array stored under `key`. Throws pg::Error naming the file and key for a missing key, a
  // corrupt member (bad CRC, inflate error, size mismatch), a dtype other than '<f4' or Fortran order.
  NpyArray read_f32(const std::string& key) const;

 private:
  struct Member {
    std::string key;
    uint16_t method = 0;
    uint32_t crc32 = 0;
    uint64_t compressed_size = 0;
    uint64_t size = 0;
    uint64_t local_header_offset = 0;
  };
  const Member& member(const std::string& key) const;

  std::unique_ptr<MappedFile> file_;
  std::vector<Member> members_;
};

// Parses a whole .npy file held in memory (format 1.0-3.0, C order, dtype '<f4' or '|u1'); the data must
// fill the rest of the buffer exactly. `name` names it in errors (pg::Error).
NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name);

}  // namespace pg
