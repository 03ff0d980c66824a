// `paligemma parse`: boxes, masks and an overlay picture from detection / segmentation text that was
// generated before (or elsewhere), without loading a model. Also holds the task-prompt flags that
// `generate` shares.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "../common/objects_json.h"
#include "paligemma/image.h"
#include "paligemma/overlay.h"
#include "paligemma/tasks.h"

namespace pg::cli {

using nlohmann::json;

const char* const kMasksNeedVaeNote =
    "segmentation masks need the mask decoder: pass --vae vae-oid.npz (gs://big_vision/paligemma/vae-oid.npz)";

std::string prompt_from_flags(const Args& args) {
  const bool task_flags = args.has("--lang") || args.has("--objects") || args.has("--question");
  if (args.has("--prompt") == args.has("--task"))
    throw UsageError(
        "give exactly one of --prompt TEXT and --task NAME (e.g. --prompt \"caption en\" or "
        "--task detect --objects \"cat ; dog\")");
  if (args.has("--prompt")) {
    if (task_flags) throw UsageError("--lang, --objects and --question apply to --task only");
    return args.get("--prompt");
  }
  TaskPromptRequest task;
  task.task = args.get("--task");
  task.language = args.get("--lang");
  task.objects = args.get("--objects");
  task.text = args.get("--question");
  if (args.has("--lang") && task.language.empty()) throw UsageError("--lang needs a language code such as en");
  try {
    return build_task_prompt(task);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
}

int run_parse(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--text", true},
                   {"--width", true},
                   {"--height", true},
                   {"--vae", true},
                   {"--model", true},
                   {"--overlay-image", true},
                   {"--overlay", true},
                   {"--mask-png", true},
                   {"--json", false}},
                  kParseUsage);
  if (!args.has("--text"))
    throw UsageError("parse needs --text TEXT (the model's output, <loc>/<seg> pieces included)");
  if (args.has("--overlay") != args.has("--overlay-image"))
    throw UsageError("--overlay OUT.png and --overlay-image IN go together (draw on IN, write OUT.png)");
  // No model runs here; --model (default: the embedded one) only says whose vae.npz decodes the masks.
  const std::shared_ptr<const MaskDecoder> decoder =
      args.has("--vae") ? load_mask_decoder(args.get("--vae")) : load_model_mask_decoder(model_dir_from(args));
  if (args.has("--mask-png") && !decoder)
    throw UsageError("--mask-png needs --vae FILE.npz (or a --model directory holding vae.npz)");
  constexpr int64_t kMaxSide = 1 << 20;
  int64_t width = args.get_int("--width", 0, 1, kMaxSide), height = args.get_int("--height", 0, 1, kMaxSide);

  ImageRGB8 image;
  if (args.has("--overlay-image")) {
    image = decode_image_file(args.get("--overlay-image"));
    if ((width && width != image.width) || (height && height != image.height))
      throw UsageError("--width/--height (" + std::to_string(width) + "x" + std::to_string(height) +
                       ") differ from --overlay-image's size (" + std::to_string(image.width) + "x" +
                       std::to_string(image.height) + "); boxes are in pixels of the original image");
    width = image.width;
    height = image.height;
  }
  if (!width || !height)
    throw UsageError("parse needs the original image's --width W and --height H (or --overlay-image IN)");

  const DecodedObjects decoded = decode_objects(args.get("--text"), int(width), int(height), decoder.get());

  if (args.has("--overlay")) {
    const std::string warning = write_overlay_png(args.get("--overlay"), image, decoded);
    if (!warning.empty()) std::cerr << "paligemma: " << warning << "\n";
  }
  if (args.has("--mask-png")) {
    for (size_t i = 0; i < decoded.objects.size(); ++i) {
      if (!decoded.objects[i].mask) continue;
      std::vector<uint8_t> grey(decoded.objects[i].mask->pixels);
      for (uint8_t& v : grey) v = v ? 255 : 0;
      write_png_gray(args.get("--mask-png") + std::to_string(i) + ".png", grey.data(), int(width), int(height));
    }
  }

  if (args.has("--json")) {
    json out{{"objects", objects_json(decoded)}, {"text", decoded.text}};
    if (decoded.needs_mask_decoder) out["note"] = kMasksNeedVaeNote;
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (size_t i = 0; i < decoded.objects.size(); ++i) {
    const DetectedObject& o = decoded.objects[i];
    std::cout << (o.label.empty() ? "(no label)" : o.label) << ": box " << o.box.x0 << " " << o.box.y0 << " "
              << o.box.x1 << " " << o.box.y1;
    if (!o.valid) std::cout << " (invalid: ymax <= ymin or xmax <= xmin)";
    if (o.mask) {
      size_t area = 0;
      for (uint8_t v : o.mask->pixels) area += v;
      std::cout << ", mask " << area << " pixels";
    }
    std::cout << "\n";
  }
  if (!decoded.text.empty()) std::cout << "text: " << decoded.text << "\n";
  if (decoded.needs_mask_decoder) std::cerr << "paligemma: note: " << kMasksNeedVaeNote << "\n";
  return 0;
}

}  // namespace pg::cli
