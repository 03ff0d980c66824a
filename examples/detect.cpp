// A complete program on the public API: load a model, detect objects in an image, print each label with its
// box in pixels.
//
//   detect MODEL_DIR IMAGE [OBJECTS]
//
// OBJECTS defaults to "red square" (the embedded model, models/synthetic, is trained on drawn shapes).
#include <paligemma/engine.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <regex>
#include <string>

namespace {

// A box side in pixels from a <locNNNN> bin, as PaliGemma's detection output reads: round(bin / 1024 * side).
int to_pixels(const std::string& bin, int side) { return int(std::nearbyint(std::stoi(bin) / 1024.0 * side)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: detect MODEL_DIR IMAGE [OBJECTS]\n");
    return 2;
  }
  try {
    const auto engine = pg::Engine::load(argv[1]);
    pg::GenerateRequest request;
    request.images.push_back(pg::decode_image_file(argv[2]));
    request.prompt = std::string("detect ") + (argc > 3 ? argv[3] : "red square");
    request.max_tokens = 32;
    const pg::GenerateResult result = engine->generate(request);
    std::printf("%s\n", result.text.c_str());

    // Each object is four <loc> tokens (ymin, xmin, ymax, xmax) and its label; objects are separated by ";".
    const int width = request.images[0].width, height = request.images[0].height;
    static const std::regex object("<loc(\\d{4})><loc(\\d{4})><loc(\\d{4})><loc(\\d{4})> ?([^;<]*)");
    for (std::sregex_iterator it(result.text.begin(), result.text.end(), object), end; it != end; ++it) {
      const std::smatch& m = *it;
      std::string label = m[5].str();
      while (!label.empty() && label.back() == ' ') label.pop_back();
      std::printf("%s: box %d %d %d %d\n", label.c_str(), to_pixels(m[2], width), to_pixels(m[1], height),
                  to_pixels(m[4], width), to_pixels(m[3], height));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detect: %s\n", e.what());
    return 1;
  }
}
