#include "render/overlay.h"

#include <algorithm>
#include <cmath>

#include "paligemma/error.h"
#include "render/font.h"

namespace pg {

namespace {

// Matplotlib's "tab10": distinct, and readable both as a fill and under white or black text.
constexpr uint8_t kPalette[10][3] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
                                     {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

uint8_t mix(uint8_t under, uint8_t over, float alpha) {
  return uint8_t(std::lround(float(under) * (1.0f - alpha) + float(over) * alpha));
}

void blend(ImageRGB8& image, int x, int y, const uint8_t rgb[3], float alpha) {
  uint8_t* p = &image.pixels[(size_t(y) * size_t(image.width) + size_t(x)) * 3];
  for (int k = 0; k < 3; ++k) p[k] = mix(p[k], rgb[k], alpha);
}

void fill_rect(ImageRGB8& image, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  for (int y = std::max(y0, 0); y < std::min(y1, image.height); ++y)
    for (int x = std::max(x0, 0); x < std::min(x1, image.width); ++x) blend(image, x, y, rgb, 1.0f);
}

void draw_box(ImageRGB8& image, const PixelBox& b, int line, const uint8_t rgb[3]) {
  fill_rect(image, b.x0, b.y0, b.x1, std::min(b.y0 + line, b.y1), rgb);
  fill_rect(image, b.x0, std::max(b.y1 - line, b.y0), b.x1, b.y1, rgb);
  fill_rect(image, b.x0, b.y0, std::min(b.x0 + line, b.x1), b.y1, rgb);
  fill_rect(image, std::max(b.x1 - line, b.x0), b.y0, b.x1, b.y1, rgb);
}

// For each pixel: whether every pixel of the window [i - radius, i + radius] along one axis is set (the
// window may not leave the image). One pass of a separable square erosion.
std::vector<uint8_t> erode_pass(const std::vector<uint8_t>& in, int width, int height, int radius, bool along_x) {
  std::vector<uint8_t> out(in.size(), 0);
  const int lines = along_x ? height : width, length = along_x ? width : height;
  std::vector<int> prefix(size_t(length) + 1);
  for (int l = 0; l < lines; ++l) {
    auto at = [&](int i) {
      return along_x ? size_t(l) * size_t(width) + size_t(i) : size_t(i) * size_t(width) + size_t(l);
    };
    for (int i = 0; i < length; ++i) prefix[size_t(i) + 1] = prefix[size_t(i)] + (in[at(i)] ? 1 : 0);
    for (int i = radius; i + radius < length; ++i)
      out[at(i)] = prefix[size_t(i + radius + 1)] - prefix[size_t(i - radius)] == 2 * radius + 1;
  }
  return out;
}

// Interior pixels are tinted; pixels within `line` of the mask's edge (or of the image's edge) are the outline.
void draw_mask(ImageRGB8& image, const BinaryMask& mask, int line, const uint8_t rgb[3]) {
  const std::vector<uint8_t> interior =
      erode_pass(erode_pass(mask.pixels, mask.width, mask.height, line, true), mask.width, mask.height, line, false);
  for (int y = 0; y < mask.height; ++y) {
    for (int x = 0; x < mask.width; ++x) {
      const size_t i = size_t(y) * size_t(mask.width) + size_t(x);
      if (mask.pixels[i]) blend(image, x, y, rgb, interior[i] ? kMaskAlpha : 1.0f);
    }
  }
}

// The label on a tag of the object's colour, above the box when there is room, else just inside its top.
void draw_label(ImageRGB8& image, const TextBitmap& text, const PixelBox& box, int padding, const uint8_t rgb[3]) {
  const int tag_width = text.width + 2 * padding, tag_height = text.height + 2 * padding;
  const int x = std::max(0, std::min(box.x0, image.width - tag_width));
  const int y =
      box.y0 - tag_height >= 0 ? box.y0 - tag_height : std::max(0, std::min(box.y0, image.height - tag_height));
  fill_rect(image, x, y, x + tag_width, y + tag_height, rgb);
  const bool light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 150.0;
  const uint8_t ink[3] = {uint8_t(light ? 0 : 255), uint8_t(light ? 0 : 255), uint8_t(light ? 0 : 255)};
  for (int r = 0; r < text.height; ++r) {
    for (int c = 0; c < text.width; ++c) {
      const int px = x + padding + c, py = y + padding + r;
      const uint8_t coverage = text.coverage[size_t(r) * size_t(text.width) + size_t(c)];
      if (coverage && px >= 0 && px < image.width && py >= 0 && py < image.height)
        blend(image, px, py, ink, float(coverage) / 255.0f);
    }
  }
}

}  // namespace

OverlayGeometry overlay_geometry(int image_width, int image_height) {
  const double side = std::min(image_width, image_height);
  OverlayGeometry g;
  g.line_width = std::max(1, int(std::lround(side / 200.0)));
  g.text_height = std::max(10, int(std::lround(side * 0.035)));
  g.label_padding = std::max(1, g.text_height / 6);
  return g;
}

void object_colour(size_t index, uint8_t rgb[3]) {
  for (int k = 0; k < 3; ++k) rgb[k] = kPalette[index % 10][k];
}

ImageRGB8 draw_objects(const ImageRGB8& image, const DecodedObjects& objects, const Font* font) {
  if (image.width < 1 || image.height < 1 || image.pixels.size() != size_t(image.width) * size_t(image.height) * 3)
    throw Error("cannot draw on an invalid image");
  ImageRGB8 out = image;
  const OverlayGeometry g = overlay_geometry(image.width, image.height);
  // Masks first, then boxes, then labels, so that no fill covers a box or a label.
  for (size_t i = 0; i < objects.objects.size(); ++i) {
    const auto& mask = objects.objects[i].mask;
    if (!objects.objects[i].valid || !mask) continue;
    if (mask->width != image.width || mask->height != image.height)
      throw Error("mask of object " + std::to_string(i) + " is " + std::to_string(mask->width) + "x" +
                  std::to_string(mask->height) + " but the image is " + std::to_string(image.width) + "x" +
                  std::to_string(image.height) + "; parse the output with the image's size");
    uint8_t rgb[3];
    object_colour(i, rgb);
    draw_mask(out, *mask, g.line_width, rgb);
  }
  for (size_t i = 0; i < objects.objects.size(); ++i) {
    if (!objects.objects[i].valid) continue;
    uint8_t rgb[3];
    object_colour(i, rgb);
    draw_box(out, objects.objects[i].box, g.line_width, rgb);
  }
  if (!font) return out;
  for (size_t i = 0; i < objects.objects.size(); ++i) {
    const DetectedObject& o = objects.objects[i];
    if (!o.valid || o.label.empty()) continue;
    uint8_t rgb[3];
    object_colour(i, rgb);
    draw_label(out, font->render(o.label, g.text_height), o.box, g.label_padding, rgb);
  }
  return out;
}

std::string write_overlay_png(const std::string& path, const ImageRGB8& image, const DecodedObjects& objects) {
  const std::string font_path = find_label_font();
  std::string warning;
  std::unique_ptr<Font> font;
  if (font_path.empty())
    warning = "labels not drawn in " + path + ": no font found; install fonts-dejavu-core or set PALIGEMMA_FONT";
  else
    font = std::make_unique<Font>(font_path);
  write_png_rgb(path, draw_objects(image, objects, font.get()));
  return warning;
}

}  // namespace pg
