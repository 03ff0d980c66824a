// A complete program on the public API (docs/api.md): load a model, detect objects in an image, print each
// label with its box in pixels.
//
//   detect [MODEL_DIR [IMAGE]]
//
// MODEL_DIR defaults to models/synthetic (the embedded model, trained on drawn shapes); without IMAGE the
// program draws a red square on a grey picture and asks for it.
#include <paligemma/engine.h>

#include <cstdio>
#include <exception>
#include <string>

namespace {

pg::ImageRGB8 red_square_picture() {
  pg::ImageRGB8 image;
  image.width = 320;
  image.height = 240;
  image.pixels.assign(size_t(image.width) * size_t(image.height) * 3, 128);
  for (int y = 60; y < 180; ++y)
    for (int x = 100; x < 220; ++x) {
      uint8_t* p = &image.pixels[(size_t(y) * size_t(image.width) + size_t(x)) * 3];
      p[0] = 220, p[1] = 30, p[2] = 30;
    }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string model_dir = argc > 1 ? argv[1] : "models/synthetic";
    const auto engine = pg::Engine::load(model_dir);
    for (const std::string& note : engine->load_notes()) std::fprintf(stderr, "note: %s\n", note.c_str());

    pg::GenerateRequest request;
    request.images.push_back(argc > 2 ? pg::decode_image_file(argv[2]) : red_square_picture());
    pg::TaskPromptRequest task;
    task.task = "detect";
    task.objects = "red square";
    request.prompt = pg::build_task_prompt(task);  // "detect red square"
    request.max_tokens = 32;
    const pg::GenerateResult result = engine->generate(request);

    std::printf("%s\n", result.text.c_str());
    for (const pg::DetectedObject& object : result.objects.objects)
      std::printf("%s: box %d %d %d %d%s\n", object.label.c_str(), object.box.x0, object.box.y0, object.box.x1,
                  object.box.y1, object.valid ? "" : " (invalid)");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "detect: %s\n", e.what());
    return 1;
  }
}
