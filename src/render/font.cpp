#include "render/font.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "paligemma/error.h"

namespace pg {

struct Font::Impl {
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  ~Impl() {
    if (face) FT_Done_Face(face);
    if (library) FT_Done_FreeType(library);
  }
};

namespace {

constexpr char32_t kReplacement = 0xFFFD;

// UTF-8 to code points; a malformed or overlong sequence becomes one U+FFFD per bad byte.
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    const int length = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    char32_t cp = length == 1 ? b : length == 2 ? (b & 0x1F) : length == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = length > 0 && i + size_t(length) <= s.size();
    for (int k = 1; ok && k < length; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + size_t(k)]);
      ok = (c >> 6) == 0x2;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr char32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMinimum[length] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    out.push_back(ok ? cp : kReplacement);
    i += ok ? size_t(length) : 1;
  }
  return out;
}

}  // namespace

Font::Font(const std::string& path) : impl_(std::make_unique<Impl>()) {
  if (FT_Init_FreeType(&impl_->library) != 0) throw Error("cannot initialize FreeType");
  if (FT_New_Face(impl_->library, path.c_str(), 0, &impl_->face) != 0)
    throw Error("cannot load font " + path + "; install fonts-dejavu-core or set PALIGEMMA_FONT to a .ttf file");
}

Font::~Font() = default;

TextBitmap Font::render(std::string_view utf8, int pixel_height) const {
  FT_Face face = impl_->face;
  if (FT_Set_Pixel_Sizes(face, 0, FT_UInt(std::max(pixel_height, 1))) != 0)
    throw Error("the label font cannot be scaled to " + std::to_string(pixel_height) + " pixels");
  const int ascender = int((face->size->metrics.ascender + 63) >> 6);
  const int descender = int(face->size->metrics.descender >> 6);  // negative
  struct Placed {
    int x, y, width, rows, pitch;
    std::vector<uint8_t> pixels;
  };
  std::vector<Placed> glyphs;
  int pen = 0, left = 0, right = 0;
  FT_UInt previous = 0;
  for (const char32_t cp : decode_utf8(utf8)) {
    const FT_UInt index = FT_Get_Char_Index(face, cp);
    if (previous && index && FT_HAS_KERNING(face)) {
      FT_Vector kerning;
      if (FT_Get_Kerning(face, previous, index, FT_KERNING_DEFAULT, &kerning) == 0) pen += int(kerning.x >> 6);
    }
    previous = index;
    if (FT_Load_Glyph(face, index, FT_LOAD_RENDER) != 0) continue;
    const FT_GlyphSlot g = face->glyph;
    const FT_Bitmap& bm = g->bitmap;
    if (bm.pixel_mode == FT_PIXEL_MODE_GRAY && bm.width > 0 && bm.rows > 0) {
      Placed p{pen + g->bitmap_left, ascender - g->bitmap_top, int(bm.width), int(bm.rows), int(bm.pitch), {}};
      for (unsigned r = 0; r < bm.rows; ++r) {
        const unsigned char* row = bm.buffer + std::ptrdiff_t(r) * bm.pitch;
        p.pixels.insert(p.pixels.end(), row, row + bm.width);
      }
      left = std::min(left, p.x);
      right = std::max(right, p.x + p.width);
      glyphs.push_back(std::move(p));
    }
    pen += int(g->advance.x >> 6);
  }
  right = std::max(right, pen);
  TextBitmap out;
  out.width = right - left;
  out.height = ascender - descender;
  out.coverage.assign(size_t(out.width) * size_t(out.height), 0);
  for (const Placed& p : glyphs) {
    for (int r = 0; r < p.rows; ++r) {
      const int y = p.y + r;
      if (y < 0 || y >= out.height) continue;
      for (int c = 0; c < p.width; ++c) {
        uint8_t& dst = out.coverage[size_t(y) * size_t(out.width) + size_t(p.x - left + c)];
        dst = std::max(dst, p.pixels[size_t(r) * size_t(p.width) + size_t(c)]);
      }
    }
  }
  return out;
}

std::string find_label_font() {
  if (const char* env = std::getenv("PALIGEMMA_FONT"); env && *env) return env;
  for (const char* path :
       {"/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return path;
  }
  return "";
}

}  // namespace pg
