// Segmentation output to pixel masks (big_vision/evaluators/proj/paligemma/transfers/segmentation.py): the
// VQ-VAE mask decoder of big_vision's vae-oid.npz turns an object's 16 <segNNN> codes into a 64x64 map, which is
// resized into the object's box with PIL's bilinear filter and thresholded at 0, as big_vision's segmentation
// evaluator does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "media/resize.h"
#include "paligemma/image.h"
#include "tasks/detection.h"

namespace pg {

// The 64x64 map resized to the box and thresholded (> 0), pasted into an image-sized mask that is 0 outside
// the box; the part of the box outside the image is cut off, and an empty box gives an empty mask.
BinaryMask paste_mask(const std::vector<float>& map, const PixelBox& box, int image_width, int image_height);

}  // namespace pg
