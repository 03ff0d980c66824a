// Fuzz target: a GGUF file (header, typed metadata, tensor descriptions, aligned data) opened as a model.
// The input goes through a scratch file because GgufFile maps files by path (scratch_file.h).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "formats/gguf.h"
#include "paligemma/error.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static pg::fuzz::ScratchFile file(".gguf");
  const std::string& path = file.write(data, size);
  try {
    const pg::GgufFile gguf(path);
    // The keys the checkpoint loader reads (src/loader/checkpoint.cpp, src/convert/quantize.cpp), each of
    // which may be missing or of another type.
    for (const char* key : {"general.architecture", "paligemma.quantization", "paligemma.config_json"}) {
      try {
        (void)gguf.string(key);
      } catch (const pg::Error&) {
      }
    }
    try {
      (void)gguf.bytes("paligemma.tokenizer_model");
    } catch (const pg::Error&) {
    }
    try {
      (void)gguf.unsigned_integer("general.file_type");
    } catch (const pg::Error&) {
    }
    const uint8_t* begin = gguf.mapped().data();
    const uint8_t* end = begin + gguf.mapped().size();
    for (const auto& [name, t] : gguf.tensors()) {
      const uint8_t* p = static_cast<const uint8_t*>(t.data);
      if (p < begin || p > end || t.bytes > size_t(end - p)) {
        std::fprintf(stderr, "tensor %s (%zu bytes) lies outside the file\n", name.c_str(), t.bytes);
        std::abort();
      }
    }
  } catch (const pg::Error&) {
  }
  return 0;
}
