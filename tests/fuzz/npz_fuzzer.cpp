// Fuzz target: NumPy archives. An input starting with the .npy magic is one array parsed in memory
// (parse_npy); anything else is an .npz (zip) archive whose every member is read, through a scratch file
// because NpzFile maps files by path (scratch_file.h). Members reach parse_npy only past their CRC, which
// mutations rarely keep, hence the direct path.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "formats/npz.h"
#include "paligemma/error.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0) {
    try {
      (void)pg::parse_npy(data, size, "input.npy");
    } catch (const pg::Error&) {
    }
    return 0;
  }
  static pg::fuzz::ScratchFile file(".npz");
  const std::string& path = file.write(data, size);
  try {
    const pg::NpzFile npz(path);
    for (const std::string& key : npz.keys()) {
      try {
        (void)npz.read_f32(key);
      } catch (const pg::Error&) {
      }
    }
  } catch (const pg::Error&) {
  }
  return 0;
}
