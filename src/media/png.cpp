// PNG (libpng). Errors jump back with longjmp; the functions holding setjmp keep no C++ objects with
// destructors alive across the jump (all state lives in PngJob, owned by the caller).
#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "media/decoders.h"

namespace pg::image_decoders {
namespace {

struct PngJob {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  bool truncated = false;
  char message[200] = {};
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_uint_32 width = 0, height = 0;
  int color_type = 0, bit_depth = 0;  // as stored in the file
  int channels = 0, out_depth = 0;    // rows after libpng's transformations
  size_t rowbytes = 0;
};

extern "C" void png_error_callback(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof job->message, "%s", message ? message : "unknown error");
  png_longjmp(png, 1);
}

extern "C" void png_warning_callback(png_structp, png_const_charp) {}

extern "C" void png_read_callback(png_structp png, png_bytep out, size_t length) {
  auto* job = static_cast<PngJob*>(png_get_io_ptr(png));
  if (job->size - job->pos < length) {
    job->truncated = true;
    png_error(png, "unexpected end of file");
  }
  std::memcpy(out, job->data + job->pos, length);
  job->pos += length;
}

bool png_read_header(PngJob* job) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  png_set_read_fn(job->png, job, png_read_callback);
  png_set_user_limits(job->png, 0x7fffffff, 0x7fffffff);  // our own max_pixels check applies instead
  // Pillow refuses a bad checksum in any chunk before the image data, ancillary ones included
  // (libpng would only warn and skip those).
  png_set_crc_action(job->png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
  png_read_info(job->png, job->info);
  job->width = png_get_image_width(job->png, job->info);
  job->height = png_get_image_height(job->png, job->info);
  job->color_type = png_get_color_type(job->png, job->info);
  job->bit_depth = png_get_bit_depth(job->png, job->info);
  return true;
}

// After the size check: sets up the transformations (libpng allocates its row buffers here).
bool png_prepare(PngJob* job) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  // Expand palettes and 1/2/4-bit grey to 8 bits (v * 255 / (2^bits - 1), as Pillow's unpackers do).
  // tRNS is not turned into alpha for grey/RGB (Pillow ignores it in convert("RGB")); for palettes
  // libpng adds an alpha channel that is dropped below. 16 bits are kept and reduced by hand.
  if (job->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job->png);
  if (job->color_type == PNG_COLOR_TYPE_GRAY && job->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(job->png);
  png_set_interlace_handling(job->png);
  png_read_update_info(job->png, job->info);
  job->channels = png_get_channels(job->png, job->info);
  job->out_depth = png_get_bit_depth(job->png, job->info);
  job->rowbytes = png_get_rowbytes(job->png, job->info);
  return true;
}

bool png_read_pixels(PngJob* job, png_bytepp rows) {
  if (setjmp(png_jmpbuf(job->png))) return false;
  png_read_image(job->png, rows);  // all passes of an interlaced image; IEND is not needed
  return true;
}

}  // namespace

ImageRGB8 decode_png(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels) {
  PngJob job;
  job.data = data;
  job.size = size;
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_error_callback, png_warning_callback);
  if (!job.png) throw Error("image '" + name + "': out of memory creating the PNG decoder");
  job.info = png_create_info_struct(job.png);
  struct Guard {
    PngJob* job;
    ~Guard() { png_destroy_read_struct(&job->png, job->info ? &job->info : nullptr, nullptr); }
  } guard{&job};
  if (!job.info) throw Error("image '" + name + "': out of memory creating the PNG decoder");

  if (!png_read_header(&job)) {
    if (job.truncated) fail_truncated(name, "PNG");
    fail_corrupt(name, "PNG", job.message);
  }
  check_dimensions(name, job.width, job.height, max_pixels);
  if (!png_prepare(&job)) {
    if (job.truncated) fail_truncated(name, "PNG");
    fail_corrupt(name, "PNG", job.message);
  }
  if ((job.out_depth != 8 && job.out_depth != 16) || job.channels < 1 || job.channels > 4 ||
      job.rowbytes != size_t(job.width) * size_t(job.channels) * size_t(job.out_depth / 8)) {
    fail_corrupt(name, "PNG", "unexpected row layout after expansion");
  }
  std::vector<uint8_t> raw(job.rowbytes * job.height);
  std::vector<png_bytep> rows(job.height);
  for (png_uint_32 y = 0; y < job.height; ++y) rows[y] = raw.data() + size_t(y) * job.rowbytes;
  if (!png_read_pixels(&job, rows.data())) {
    if (job.truncated) fail_truncated(name, "PNG");
    fail_corrupt(name, "PNG", job.message);
  }

  ImageRGB8 image = new_image(int(job.width), int(job.height));
  const size_t n = size_t(job.width) * job.height;
  const int c = job.channels;
  uint8_t* out = image.pixels.data();
  if (job.out_depth == 8) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = raw.data() + i * size_t(c);
      if (c >= 3) {
        out[3 * i + 0] = p[0], out[3 * i + 1] = p[1], out[3 * i + 2] = p[2];
      } else {
        out[3 * i + 0] = out[3 * i + 1] = out[3 * i + 2] = p[0];
      }
    }
  } else {
    // 16-bit samples are big-endian. Grey alone is Pillow's mode "I;16", which clips to 255 on
    // conversion; every other 16-bit layout is unpacked to 8 bits by keeping the high byte.
    const bool clip_grey = job.color_type == PNG_COLOR_TYPE_GRAY && c == 1;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = raw.data() + i * size_t(c) * 2;
      if (clip_grey) {
        const unsigned v = unsigned(p[0]) << 8 | p[1];
        out[3 * i + 0] = out[3 * i + 1] = out[3 * i + 2] = uint8_t(std::min(v, 255u));
      } else if (c >= 3) {
        out[3 * i + 0] = p[0], out[3 * i + 1] = p[2], out[3 * i + 2] = p[4];
      } else {
        out[3 * i + 0] = out[3 * i + 1] = out[3 * i + 2] = p[0];
      }
    }
  }
  return image;
}

}  // namespace pg::image_decoders
