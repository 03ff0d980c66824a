// Segmentation output to pixel masks (docs/paligemma-spec.md §10): the VQ-VAE mask decoder of big_vision's
// vae-oid.npz turns an object's 16 <segNNN> codes into a 64x64 map, which is resized into the object's
// box with PIL's bilinear filter and thresholded at 0, as big_vision's segmentation evaluator does.
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paligemma/image.h"
#include "media/resize.h"
#include "model/mask_decoder.h"
#include "tasks/detection.h"

namespace pg {

// A binary mask over a whole image, row-major, 1 inside and 0 outside.
struct BinaryMask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;
};

// The 64x64 map resized to the box and thresholded (> 0), pasted into an image-sized mask that is 0 outside
// the box; the part of the box outside the image is cut off, and an empty box gives an empty mask.
BinaryMask paste_mask(const std::vector<float>& map, const PixelBox& box, int image_width, int image_height);

// COCO's uncompressed run-length encoding (pycocotools): runs over the pixels in column-major order,
// alternating 0-runs and 1-runs and starting with a 0-run (which may be empty).
struct CocoRle {
  int height = 0;
  int width = 0;
  std::vector<uint32_t> counts;
};
CocoRle encode_coco_rle(const BinaryMask& mask);

// Parsed objects of a model output and, for segmentation objects, their masks.
struct DecodedObjects {
  std::vector<DetectedObject> objects;
  // One entry per object: the mask of a valid object that has seg codes when a decoder was given.
  std::vector<std::optional<BinaryMask>> masks;
  std::string text;                 // the text that is not part of an object (ParsedDetections::text)
  bool needs_mask_decoder = false;  // some object has seg codes but no decoder was given
};

// parse_detections, then the masks (when `decoder` is not null). Throws pg::Error for an image size < 1, and
// before any mask work when masks are due and the image has more than `max_pixels` pixels (each mask is an
// image-sized bitmap; the default is the limit decoded images have).
DecodedObjects decode_objects(std::string_view text, int image_width, int image_height, const MaskDecoder* decoder,
                              size_t max_pixels = kDefaultMaxImagePixels);

// The objects as a JSON array: {"label", "box": [x0, y0, x1, y1], "box_normalized": [...], "valid",
// "seg_codes" (segmentation only), "mask": {"size": [H, W], "counts": [...]} (when decoded)}.
nlohmann::json objects_json(const DecodedObjects& decoded);

}  // namespace pg
