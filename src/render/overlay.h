// Detection / segmentation results drawn on the original image: each valid object gets a colour; its
// mask is tinted (translucent fill) and outlined, its box drawn, its label written on a filled tag at
// the box's top-left corner. Line width and text size grow with the image so that the picture reads the
// same at 224 px and at 4000 px.
#pragma once
#include <string>

#include "paligemma/image.h"
#include "paligemma/overlay.h"

namespace pg {

class Font;

struct OverlayGeometry {
  int line_width = 1;   // box and mask outline thickness in pixels: max(1, round(min side / 200))
  int text_height = 0;  // label font size in pixels: max(10, round(min side * 0.035))
  int label_padding = 0;
};
OverlayGeometry overlay_geometry(int image_width, int image_height);

// RGB of object i's colour (a fixed 10-colour palette, repeated).
void object_colour(size_t index, uint8_t rgb[3]);

// Alpha of the mask fill.
constexpr float kMaskAlpha = 0.45f;

// A copy of `image` with the objects drawn. Invalid objects (ymax <= ymin or xmax <= xmin) are not drawn.
// `font` null: boxes and masks only, no labels. Throws pg::Error when `image` is not the size the objects
// were parsed for (mask size mismatch).
ImageRGB8 draw_objects(const ImageRGB8& image, const DecodedObjects& objects, const Font* font);

}  // namespace pg
