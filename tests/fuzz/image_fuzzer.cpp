// Fuzz target: every image decoder behind decode_image_memory. The first byte picks the format family and
// the rest is the image, with that family's signature written over its first bytes, so that each decoder
// keeps receiving inputs however the mutations treat the magic bytes (detection itself is a few memcmp).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "paligemma/error.h"
#include "paligemma/image.h"

namespace {

// Small enough that a header claiming the maximum decodes quickly under the sanitizers.
constexpr size_t kMaxPixels = size_t{1} << 20;

struct Family {
  const char* signature;  // written at offset 0; '*' keeps the input's byte
  size_t length;
  size_t variant_at;     // a '*' byte that must be one of `variants` (kept when it is one, else mapped)
  const char* variants;  // empty: none
};

const Family kFamilies[] = {
    {"\x89PNG\r\n\x1a\n", 8, 0, ""},
    {"\xff\xd8\xff", 3, 0, ""},
    {"GIF8*a", 6, 4, "79"},
    {"BM", 2, 0, ""},
    {"RIFF****WEBPVP8*", 16, 15, " LX"},  // bytes 4-7: the RIFF size
    {"P*", 2, 1, "123456"},
    {"", 0, 0, ""},  // TGA has no signature: a plausible header is the input's job
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Family& f = kFamilies[data[0] % std::size(kFamilies)];
  std::vector<uint8_t> image(data + 1, data + size);
  if (image.size() >= f.length) {
    for (size_t i = 0; i < f.length; ++i)
      if (f.signature[i] != '*') image[i] = uint8_t(f.signature[i]);
    const size_t n = std::strlen(f.variants);
    if (n && !std::memchr(f.variants, image[f.variant_at], n))
      image[f.variant_at] = uint8_t(f.variants[image[f.variant_at] % n]);
  }
  try {
    (void)pg::decode_image_memory(image.data(), image.size(), "input", kMaxPixels);
  } catch (const pg::Error&) {  // ImageTooLargeError included
  }
  return 0;
}
