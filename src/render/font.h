// Label text rendering with FreeType (anti-aliased grey coverage), for the detection overlays.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pg {

// Coverage of rendered text: 0 (background) ... 255 (ink), row-major.
struct TextBitmap {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> coverage;
};

class Font {
 public:
  // Loads a TrueType/OpenType font file. Throws pg::Error naming the file when FreeType cannot open it.
  explicit Font(const std::string& path);
  ~Font();
  Font(const Font&) = delete;
  Font& operator=(const Font&) = delete;

  // One line of UTF-8 text (invalid bytes drawn as U+FFFD) with kerning, `pixel_height` pixels per em; the
  // bitmap is as tall as the font's ascender-to-descender line so that labels of one size line up.
  // Characters the font lacks are drawn as its "missing glyph" box.
  TextBitmap render(std::string_view utf8, int pixel_height) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The label font: $PALIGEMMA_FONT when set (e.g. a CJK font for Chinese labels), else DejaVu Sans Bold or
// DejaVu Sans from the Debian package fonts-dejavu-core. Empty when none of these files exists.
std::string find_label_font();

}  // namespace pg
