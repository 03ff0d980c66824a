#include "paligemma/overlay.h"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "paligemma/error.h"

namespace pg {

namespace {

// libpng reports errors by longjmp; the message is kept so that the exception can name it.
struct WriteJob {
  std::string message;
};

void on_error(png_structp png, png_const_charp message) {
  static_cast<WriteJob*>(png_get_error_ptr(png))->message = message;
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

void write_png(const std::string& path, const uint8_t* pixels, int width, int height, int channels) {
  if (width < 1 || height < 1 || !pixels)
    throw Error("cannot write " + path + ": the image is empty (" + std::to_string(width) + "x" +
                std::to_string(height) + ")");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error("cannot write " + path + ": " + std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(f, std::fclose);
  WriteJob job;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error("cannot write " + path + ": out of memory");
  }
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y)
    rows[size_t(y)] = const_cast<png_bytep>(pixels + size_t(y) * size_t(width) * size_t(channels));
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("cannot write " + path + ": " + job.message);
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, png_uint_32(width), png_uint_32(height), 8,
               channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  if (std::fflush(f) != 0 || std::ferror(f)) throw Error("cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

void write_png_rgb(const std::string& path, const ImageRGB8& image) {
  if (image.pixels.size() != size_t(image.width) * size_t(image.height) * 3)
    throw Error("cannot write " + path + ": invalid image buffer");
  write_png(path, image.pixels.data(), image.width, image.height, 3);
}

void write_png_gray(const std::string& path, const uint8_t* pixels, int width, int height) {
  write_png(path, pixels, width, height, 1);
}

}  // namespace pg
