// Overlays by their properties: the picture keeps its size, box edges and mask outlines take the object's
// colour, mask interiors are tinted by the documented alpha, labels are inked, other pixels are untouched;
// PNG output decodes back to the same pixels.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "paligemma/error.h"
#include "paligemma/image.h"
#include "render/font.h"
#include "render/overlay.h"
#include "test_util.h"

namespace pg {
namespace {

namespace fs = std::filesystem;

ImageRGB8 grey_image(int width, int height, uint8_t level) {
  return {width, height, std::vector<uint8_t>(size_t(width) * size_t(height) * 3, level)};
}

std::array<uint8_t, 3> pixel(const ImageRGB8& image, int x, int y) {
  const uint8_t* p = &image.pixels[(size_t(y) * size_t(image.width) + size_t(x)) * 3];
  return {p[0], p[1], p[2]};
}

std::array<uint8_t, 3> colour(size_t index) {
  uint8_t rgb[3];
  object_colour(index, rgb);
  return {rgb[0], rgb[1], rgb[2]};
}

DetectedObject object(const std::string& label, PixelBox box, bool valid = true) {
  DetectedObject o;
  o.label = label;
  o.box = box;
  o.valid = valid;
  return o;
}

// A 300x200 grey picture with: a box with a 60x40 rectangular mask inside it, a box without a mask, an
// invalid object.
DecodedObjects scene() {
  DecodedObjects d;
  d.objects = {object("cat", {50, 60, 150, 160}), object("dog", {200, 100, 280, 180}),
               object("ghost", {10, 10, 40, 40}, false)};
  BinaryMask m{300, 200, std::vector<uint8_t>(300 * 200, 0)};
  for (int y = 80; y < 120; ++y)
    for (int x = 70; x < 130; ++x) m.pixels[size_t(y) * 300 + size_t(x)] = 1;
  d.objects[0].mask = m;
  return d;
}

TEST(Overlay, GeometryScalesWithTheImage) {
  EXPECT_EQ(overlay_geometry(224, 224).line_width, 1);
  EXPECT_EQ(overlay_geometry(224, 224).text_height, 10);
  EXPECT_EQ(overlay_geometry(4000, 3000).line_width, 15);
  EXPECT_EQ(overlay_geometry(4000, 3000).text_height, 105);
  EXPECT_LT(overlay_geometry(448, 448).text_height, overlay_geometry(896, 896).text_height);
}

TEST(Overlay, BoxesMasksAndUntouchedPixels) {
  const ImageRGB8 in = grey_image(300, 200, 100);
  const DecodedObjects d = scene();
  const ImageRGB8 out = draw_objects(in, d, nullptr);
  ASSERT_EQ(out.width, in.width);
  ASSERT_EQ(out.height, in.height);
  const int line = overlay_geometry(300, 200).line_width;
  ASSERT_EQ(line, 1);
  // Box edges (end-exclusive boxes: the right edge is column x1 - 1).
  EXPECT_EQ(pixel(out, 50, 110), colour(0));
  EXPECT_EQ(pixel(out, 149, 110), colour(0));
  EXPECT_EQ(pixel(out, 100, 60), colour(0));
  EXPECT_EQ(pixel(out, 100, 159), colour(0));
  EXPECT_EQ(pixel(out, 200, 150), colour(1));
  EXPECT_EQ(pixel(out, 279, 150), colour(1));
  // Just outside and just inside a box (away from the mask): unchanged.
  EXPECT_EQ(pixel(out, 49, 110), pixel(in, 49, 110));
  EXPECT_EQ(pixel(out, 150, 110), pixel(in, 150, 110));
  EXPECT_EQ(pixel(out, 51, 140), pixel(in, 51, 140));
  EXPECT_EQ(pixel(out, 240, 140), pixel(in, 240, 140));
  // Mask: the interior is tinted, the one-pixel rim is the solid colour, outside the mask is untouched.
  const auto c = colour(0);
  std::array<uint8_t, 3> tint;
  for (int k = 0; k < 3; ++k)
    tint[size_t(k)] = uint8_t(std::lround(100 * (1 - kMaskAlpha) + c[size_t(k)] * kMaskAlpha));
  EXPECT_EQ(pixel(out, 100, 100), tint);
  EXPECT_EQ(pixel(out, 71, 81), tint);
  EXPECT_EQ(pixel(out, 70, 100), c);
  EXPECT_EQ(pixel(out, 129, 119), c);
  EXPECT_EQ(pixel(out, 69, 100), pixel(in, 69, 100));
  EXPECT_EQ(pixel(out, 100, 120), pixel(in, 100, 120));
  // The invalid object is not drawn; pixels away from every object are untouched.
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 45; ++x) ASSERT_EQ(pixel(out, x, y), pixel(in, x, y)) << x << "," << y;
  EXPECT_EQ(pixel(out, 299, 199), pixel(in, 299, 199));
}

TEST(Overlay, LabelsAreInkedOnAFilledTag) {
  const std::string font_path = find_label_font();
  if (font_path.empty()) GTEST_SKIP() << "no label font (install fonts-dejavu-core)";
  const Font font(font_path);
  const ImageRGB8 in = grey_image(300, 200, 100);
  const ImageRGB8 out = draw_objects(in, scene(), &font);
  // The tag sits above the box's top-left corner (y0 = 60 leaves room): tag colour and white ink (the
  // palette's first colour is dark) appear there, nothing is drawn above the tag.
  const OverlayGeometry g = overlay_geometry(300, 200);
  int tag = 0, ink = 0;
  for (int y = 0; y < 60; ++y) {
    for (int x = 50; x < 120; ++x) {
      tag += pixel(out, x, y) == colour(0);
      ink += pixel(out, x, y) == std::array<uint8_t, 3>{255, 255, 255};
    }
  }
  EXPECT_GT(tag, 50);
  EXPECT_GT(ink, 5);
  EXPECT_EQ(pixel(out, 50, 60 - g.text_height * 2 - 2 * g.label_padding - 1), pixel(in, 50, 0));
  // The drawing without labels differs from the one with labels only in the tag areas (above each box).
  const ImageRGB8 bare = draw_objects(in, scene(), nullptr);
  for (int y = 60; y < 200; ++y)
    for (int x = 0; x < 300; ++x)
      if (!(x >= 200 && y < 100)) {
        ASSERT_EQ(pixel(out, x, y), pixel(bare, x, y)) << x << "," << y;
      }
}

TEST(Overlay, RejectsAMaskOfAnotherSize) {
  DecodedObjects d = scene();
  EXPECT_THROW(draw_objects(grey_image(200, 300, 0), d, nullptr), Error);
}

TEST(Font, RendersAsciiNonAsciiAndInvalidUtf8) {
  const std::string font_path = find_label_font();
  if (font_path.empty()) GTEST_SKIP() << "no label font (install fonts-dejavu-core)";
  const Font font(font_path);
  const TextBitmap a = font.render("Ag", 20);
  EXPECT_GT(a.width, 10);
  EXPECT_GE(a.height, 20);
  EXPECT_EQ(*std::max_element(a.coverage.begin(), a.coverage.end()), 255);
  const TextBitmap wide = font.render("Ag Ag Ag", 20);
  EXPECT_GT(wide.width, 3 * a.width);
  EXPECT_GT(font.render("crème 猫", 20).width, 0);
  EXPECT_GT(font.render(std::string("\xff\xfe ok"), 20).width, 0);
  EXPECT_THROW(Font("/nonexistent/font.ttf"), Error);
}

TEST(Png, WrittenFilesDecodeToTheSamePixels) {
  ImageRGB8 image = grey_image(7, 5, 0);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t(i * 37);
  const test::TempDir tmp;
  const fs::path rgb = tmp / "rgb.png";
  write_png_rgb(rgb.string(), image);
  const ImageRGB8 back = decode_image_file(rgb.string());
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.pixels, image.pixels);

  const std::vector<uint8_t> grey = {0, 255, 7, 9, 10, 11};
  const fs::path g = tmp / "grey.png";
  write_png_gray(g.string(), grey.data(), 3, 2);
  const ImageRGB8 grey_back = decode_image_file(g.string());
  for (size_t i = 0; i < grey.size(); ++i) EXPECT_EQ(grey_back.pixels[i * 3 + 1], grey[i]);
  EXPECT_THROW(write_png_rgb("/nonexistent-dir/x.png", image), Error);
}

}  // namespace
}  // namespace pg
