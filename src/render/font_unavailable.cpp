// The label font in a build without FreeType (-DPG_WITH_OVERLAY=OFF): finding or opening a font is refused,
// so overlays (write_overlay_png) fail with this error instead of drawing pictures without their labels.
#include "render/font.h"

#include "paligemma/error.h"

namespace pg {
namespace {

[[noreturn]] void refuse() {
  throw Error("this build of paligemma has no overlay support (configured with -DPG_WITH_OVERLAY=OFF); rebuild "
              "with -DPG_WITH_OVERLAY=ON and FreeType to draw overlays");
}

}  // namespace

struct Font::Impl {};

Font::Font(const std::string&) { refuse(); }
Font::~Font() = default;
TextBitmap Font::render(std::string_view, int) const { refuse(); }

std::string find_label_font() { refuse(); }

}  // namespace pg
