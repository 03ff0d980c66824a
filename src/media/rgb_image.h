// Internal to src/media: allocating and validating ImageRGB8 buffers (decoders, resamplers, preprocessing).
#pragma once
#include <cstddef>
#include <string>

#include "paligemma/error.h"
#include "paligemma/image.h"

namespace pg {

// A width x height image, all pixels black.
inline ImageRGB8 new_image(int width, int height) {
  ImageRGB8 image;
  image.width = width;
  image.height = height;
  image.pixels.assign(size_t(width) * size_t(height) * 3, 0);
  return image;
}

// Throws pg::Error, naming `what`, unless the image has both sides >= 1 and width * height * 3 bytes.
inline void check_image(const ImageRGB8& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * 3) {
    throw Error(std::string(what) + ": invalid image (" + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " with " + std::to_string(image.pixels.size()) +
                " bytes; expected width * height * 3 bytes of RGB)");
  }
}

}  // namespace pg
