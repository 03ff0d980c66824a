// Fuzz target: a safetensors file (8-byte header length, JSON header, tensor data) opened as a checkpoint.
// The input goes through a scratch file because SafetensorsCollection maps files by path (scratch_file.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "formats/safetensors.h"
#include "paligemma/error.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static pg::fuzz::ScratchFile file(".safetensors");
  const std::string& path = file.write(data, size);
  try {
    const pg::SafetensorsCollection c = pg::SafetensorsCollection::open_files({path});
    for (const auto& [name, t] : c.tensors()) {
      // The collection does not expose the mapping's base: a view is checked by its size against the
      // input's and by reading its first and last byte (a read past the mapping faults).
      const size_t bytes = size_t(t.numel()) * pg::dtype_size(t.dtype);
      if (bytes > size) {
        std::fprintf(stderr, "tensor %s claims %zu bytes of a %zu-byte file\n", name.c_str(), bytes, size);
        std::abort();
      }
      if (bytes > 0) {
        volatile uint8_t sink = static_cast<const uint8_t*>(t.data)[0];
        sink = static_cast<const uint8_t*>(t.data)[bytes - 1];
        (void)sink;
      }
    }
  } catch (const pg::Error&) {
  }
  return 0;
}
