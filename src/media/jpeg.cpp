// JPEG (libjpeg-turbo with its defaults: ISLOW IDCT, fancy upsampling — what Pillow uses when it is
// not in draft mode). The library's default error handler calls exit(); ours longjmps instead. A
// premature end of data (libjpeg warns and pads with grey) is an error, as it is in Pillow, except
// after all scanlines have been read (a missing EOI marker, which Pillow accepts).
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

// clang-format off
#include <jpeglib.h>  // needs <cstdio> first
#include <jerror.h>
// clang-format on

#include "media/decoders.h"

namespace pg::image_decoders {
namespace {

struct JpegJob {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  std::jmp_buf jump{};
  bool created = false;
  bool truncated = false;
  bool finishing = false;
  char message[JMSG_LENGTH_MAX] = {};
};

extern "C" void jpeg_error_exit_callback(j_common_ptr cinfo) {
  auto* job = reinterpret_cast<JpegJob*>(cinfo->client_data);
  cinfo->err->format_message(cinfo, job->message);
  std::longjmp(job->jump, 1);
}

extern "C" void jpeg_emit_message_callback(j_common_ptr cinfo, int level) {
  auto* job = reinterpret_cast<JpegJob*>(cinfo->client_data);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF && !job->finishing) {
    job->truncated = true;
    std::longjmp(job->jump, 1);
  }
  // Other warnings (e.g. extraneous bytes before a marker) are ignored, as Pillow ignores them.
}

bool jpeg_read_header_step(JpegJob* job, const uint8_t* data, size_t size) {
  if (setjmp(job->jump)) return false;
  jpeg_create_decompress(&job->cinfo);
  job->created = true;
  job->cinfo.client_data = job;
  jpeg_mem_src(&job->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&job->cinfo, TRUE);
  return true;
}

// Reads all scanlines into `out` (width * out_color_components bytes per row).
bool jpeg_read_pixels_step(JpegJob* job, uint8_t* out, size_t row_bytes) {
  if (setjmp(job->jump)) return false;
  jpeg_start_decompress(&job->cinfo);
  while (job->cinfo.output_scanline < job->cinfo.output_height) {
    JSAMPROW row = out + size_t(job->cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&job->cinfo, &row, 1);
  }
  job->finishing = true;
  jpeg_finish_decompress(&job->cinfo);
  return true;
}

}  // namespace

ImageRGB8 decode_jpeg(const uint8_t* data, size_t size, const std::string& name, size_t max_pixels) {
  auto job = std::make_unique<JpegJob>();
  job->cinfo.err = jpeg_std_error(&job->err);
  job->err.error_exit = jpeg_error_exit_callback;
  job->err.emit_message = jpeg_emit_message_callback;
  job->cinfo.client_data = job.get();
  struct Guard {
    JpegJob* job;
    ~Guard() {
      if (job->created) jpeg_destroy_decompress(&job->cinfo);
    }
  } guard{job.get()};

  if (!jpeg_read_header_step(job.get(), data, size)) {
    if (job->truncated) fail_truncated(name, "JPEG");
    fail_corrupt(name, "JPEG", job->message);
  }
  jpeg_decompress_struct& cinfo = job->cinfo;
  if (cinfo.data_precision != 8) {
    fail(name, "is a " + std::to_string(cinfo.data_precision) +
                   "-bit JPEG, which is not supported; re-export it as an 8-bit JPEG or PNG");
  }
  const int components = cinfo.num_components;
  if (components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (components == 3) {
    cinfo.out_color_space = JCS_RGB;
  } else if (components == 4) {
    cinfo.out_color_space = JCS_CMYK;  // YCCK is converted to CMYK by libjpeg
  } else {
    fail(name, "is a JPEG with " + std::to_string(components) +
                   " colour components, which is not supported; re-export it as an RGB JPEG or PNG");
  }
  check_dimensions(name, cinfo.image_width, cinfo.image_height, max_pixels);

  ImageRGB8 image = new_image(int(cinfo.image_width), int(cinfo.image_height));
  std::vector<uint8_t> buffer;
  uint8_t* target = image.pixels.data();
  if (components != 3) {
    buffer.resize(size_t(cinfo.image_width) * cinfo.image_height * size_t(components));
    target = buffer.data();
  }
  if (!jpeg_read_pixels_step(job.get(), target, size_t(cinfo.image_width) * size_t(components))) {
    if (job->truncated) fail_truncated(name, "JPEG");
    fail_corrupt(name, "JPEG", job->message);
  }
  if (cinfo.output_width != cinfo.image_width || cinfo.output_height != cinfo.image_height ||
      cinfo.out_color_components != components) {
    fail_corrupt(name, "JPEG", "unexpected output layout");
  }
  const size_t n = size_t(cinfo.image_width) * cinfo.image_height;
  uint8_t* out = image.pixels.data();
  if (components == 1) {
    for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = buffer[i];
  } else if (components == 4) {
    // Pillow reads CMYK JPEGs with rawmode "CMYK;I" (inverted, Adobe convention) and converts with
    // cmyk2rgb: nk = 255 - k; out = clip(nk - MULDIV255(c, nk)), MULDIV255(a, b) = ((t >> 8) + t) >> 8
    // with t = a * b + 128. With the inversion, c = 255 - raw_c and nk = raw_k.
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &buffer[4 * i];
      const int nk = p[3];
      for (int ch = 0; ch < 3; ++ch) {
        const int cv = 255 - p[ch];
        const int t = cv * nk + 128;
        const int v = nk - (((t >> 8) + t) >> 8);
        out[3 * i + size_t(ch)] = uint8_t(std::clamp(v, 0, 255));
      }
    }
  }
  return image;
}

}  // namespace pg::image_decoders
