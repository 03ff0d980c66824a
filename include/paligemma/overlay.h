// Pictures of the results: detection / segmentation objects drawn on the original image, and PNG files.
#pragma once
#include <cstdint>
#include <string>

#include "paligemma/image.h"
#include "paligemma/tasks.h"

namespace pg {

// Writes a copy of `image` with the objects drawn as an RGB PNG: each valid object gets a colour, its mask
// tinted and outlined, its box drawn, its label written on a tag at the box's top-left corner (line width and
// text size grow with the image). Invalid objects are not drawn. The labels use a system TrueType font
// (DejaVu Sans or Liberation Sans); without one the boxes and masks are drawn and a warning line is
// returned, else "". Throws pg::Error when the image is not the size the objects were parsed for, or when
// the file cannot be written.
std::string write_overlay_png(const std::string& path, const ImageRGB8& image, const DecodedObjects& objects);

// Writes `image` as an 8-bit RGB PNG. Throws pg::Error naming the file when it cannot be written.
void write_png_rgb(const std::string& path, const ImageRGB8& image);

// Writes width x height row-major bytes as an 8-bit greyscale PNG. Throws pg::Error.
void write_png_gray(const std::string& path, const uint8_t* pixels, int width, int height);

}  // namespace pg
