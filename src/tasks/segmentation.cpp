#include "tasks/segmentation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/mask_decoder.h"
#include "paligemma/error.h"

namespace pg {

namespace {

// Pillow's precompute_coeffs (Resample.c) with the bilinear (triangle, support 1) filter for the box
// (0, in_size): per output index the first input index and its normalized double weights.
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<double> weights;  // ksize per output index
};

Coefficients bilinear_coefficients(int in_size, int out_size) {
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coefficients c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.weights.assign(size_t(out_size) * size_t(c.ksize), 0.0);
  const double inverse_filterscale = 1.0 / filterscale;
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int xmax = std::min(int(center + support + 0.5), in_size) - xmin;
    double* k = &c.weights[size_t(xx) * size_t(c.ksize)];
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::abs((x + xmin - center + 0.5) * inverse_filterscale);
      k[x] = t < 1.0 ? 1.0 - t : 0.0;
      total += k[x];
    }
    if (total != 0.0)
      for (int x = 0; x < xmax; ++x) k[x] /= total;
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

// One pass along rows (horizontal) or columns (vertical) of a row-major [height, width] float image.
std::vector<float> resample_pass(const std::vector<float>& src, int width, int height, int out_size, bool horizontal) {
  const Coefficients c = bilinear_coefficients(horizontal ? width : height, out_size);
  const int out_width = horizontal ? out_size : width, out_height = horizontal ? height : out_size;
  std::vector<float> out(size_t(out_width) * size_t(out_height));
  for (int yy = 0; yy < out_height; ++yy) {
    for (int xx = 0; xx < out_width; ++xx) {
      const int index = horizontal ? xx : yy;
      const double* k = &c.weights[size_t(index) * size_t(c.ksize)];
      const int first = c.first[size_t(index)];
      double sum = 0.0;
      for (int t = 0; t < c.count[size_t(index)]; ++t) {
        const int sx = horizontal ? first + t : xx, sy = horizontal ? yy : first + t;
        sum += double(src[size_t(sy) * size_t(width) + size_t(sx)]) * k[t];
      }
      out[size_t(yy) * size_t(out_width) + size_t(xx)] = float(sum);
    }
  }
  return out;
}

}  // namespace

std::vector<float> resize_bilinear_pil_float(const std::vector<float>& src, int width, int height, int out_width,
                                             int out_height) {
  if (width < 1 || height < 1 || out_width < 1 || out_height < 1 || src.size() != size_t(width) * size_t(height))
    throw Error("resize_bilinear_pil_float: cannot resize " + std::to_string(width) + "x" + std::to_string(height) +
                " (" + std::to_string(src.size()) + " values) to " + std::to_string(out_width) + "x" +
                std::to_string(out_height));
  // Pass order of Pillow 13's ImagingResampleInner (see resize_bicubic_pil in src/media/image.cpp); checked for
  // float images in tools/reference/make_vae_fixtures.py's cases.
  const bool horizontal = out_width != width, vertical = out_height != height;
  const int64_t rows_removed = int64_t(height) - out_height, columns_removed = int64_t(width) - out_width;
  if (horizontal && vertical && rows_removed > 0 && rows_removed > 2 * columns_removed)
    return resample_pass(resample_pass(src, width, height, out_height, false), width, out_height, out_width, true);
  std::vector<float> out = horizontal ? resample_pass(src, width, height, out_width, true) : src;
  return vertical ? resample_pass(out, out_width, height, out_height, false) : out;
}

BinaryMask paste_mask(const std::vector<float>& map, const PixelBox& box, int image_width, int image_height) {
  if (image_width < 1 || image_height < 1)
    throw Error("paste_mask: image size " + std::to_string(image_width) + "x" + std::to_string(image_height) +
                " is invalid");
  BinaryMask mask;
  mask.width = image_width;
  mask.height = image_height;
  mask.pixels.assign(size_t(image_width) * size_t(image_height), 0);
  if (box.width() < 1 || box.height() < 1) return mask;
  const std::vector<float> resized =
      resize_bilinear_pil_float(map, kMaskMapSize, kMaskMapSize, box.width(), box.height());
  for (int r = std::max(box.y0, 0); r < std::min(box.y1, image_height); ++r)
    for (int c = std::max(box.x0, 0); c < std::min(box.x1, image_width); ++c)
      mask.pixels[size_t(r) * size_t(image_width) + size_t(c)] =
          resized[size_t(r - box.y0) * size_t(box.width()) + size_t(c - box.x0)] > 0.0f;
  return mask;
}

CocoRle encode_coco_rle(const BinaryMask& mask) {
  CocoRle rle;
  rle.height = mask.height;
  rle.width = mask.width;
  uint8_t current = 0;
  uint32_t run = 0;
  for (int c = 0; c < mask.width; ++c) {
    for (int r = 0; r < mask.height; ++r) {
      const uint8_t v = mask.pixels[size_t(r) * size_t(mask.width) + size_t(c)] ? 1 : 0;
      if (v != current) {
        rle.counts.push_back(run);
        current = v;
        run = 0;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

DecodedObjects decode_objects(std::string_view text, int image_width, int image_height, const MaskDecoder* decoder,
                              size_t max_pixels) {
  ParsedDetections parsed = parse_detections(text, image_width, image_height);
  DecodedObjects out;
  out.objects = std::move(parsed.objects);
  out.text = std::move(parsed.text);
  const uint64_t pixels = uint64_t(image_width) * uint64_t(image_height);
  const bool masks_due = decoder && std::any_of(out.objects.begin(), out.objects.end(), [](const DetectedObject& o) {
                           return o.valid && !o.seg_codes.empty();
                         });
  if (masks_due && pixels > max_pixels)
    throw Error("the masks of a " + std::to_string(image_width) + "x" + std::to_string(image_height) + " image (" +
                std::to_string(pixels) + " pixels) are over the image pixel limit of " + std::to_string(max_pixels) +
                " (each mask is an image-sized bitmap); give the image's real size");
  for (DetectedObject& o : out.objects) {
    if (o.seg_codes.empty()) continue;
    if (!decoder) {
      out.needs_mask_decoder = true;
      continue;
    }
    if (!o.valid) continue;
    o.mask = paste_mask(decoder->decode(o.seg_codes), o.box, image_width, image_height);
    o.mask_rle = encode_coco_rle(*o.mask);
  }
  return out;
}

}  // namespace pg
