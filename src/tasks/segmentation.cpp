#include "tasks/segmentation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/mask_decoder.h"
#include "paligemma/error.h"

namespace pg {

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
