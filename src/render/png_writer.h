// PNG files via libpng: 8-bit RGB (overlays) and 8-bit grey (masks).
#pragma once
#include <cstdint>
#include <string>

#include "paligemma/image.h"

namespace pg {

// Writes `image` as an 8-bit RGB PNG. Throws pg::Error naming the file when it cannot be written.
void write_png_rgb(const std::string& path, const ImageRGB8& image);
// Writes width x height row-major bytes as an 8-bit greyscale PNG. Throws pg::Error.
void write_png_gray(const std::string& path, const uint8_t* pixels, int width, int height);

}  // namespace pg
