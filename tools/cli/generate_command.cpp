// `paligemma generate`: text for images and a prompt.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "../common/decoding_options.h"
#include "args.h"
#include "commands.h"
#include "../common/objects_json.h"
#include "paligemma/engine.h"
#include "paligemma/overlay.h"
#include "paligemma/system.h"
#include "paligemma/video.h"

namespace pg::cli {

using nlohmann::json;

namespace {

// decode_step_s shows whether decoding slows down or speeds up as it goes (a mean rate hides that); a median
// over runs has none.
json timings_json(const Timings& t, double load_s) {
  json j{{"load_s", load_s},         {"preprocess_s", t.preprocess_s},
         {"vision_s", t.vision_s},   {"prefill_s", t.prefill_s},
         {"ttft_s", t.ttft_s},       {"decode_tokens_per_s", t.decode_tokens_per_s},
         {"total_s", t.total_s}};
  if (!t.decode_step_s.empty()) j["decode_step_s"] = t.decode_step_s;
  return j;
}

// Each field's median over the measured runs (--repeat), so one slow run does not decide any figure; one run's
// timings as they are.
Timings median_timings(const std::vector<Timings>& runs) {
  if (runs.size() == 1) return runs[0];
  const auto median = [&](double Timings::*field) {
    std::vector<double> v;
    for (const Timings& t : runs) v.push_back(t.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Timings m;
  for (double Timings::*field : {&Timings::preprocess_s, &Timings::vision_s, &Timings::prefill_s, &Timings::ttft_s,
                                 &Timings::decode_s, &Timings::decode_tokens_per_s, &Timings::total_s})
    m.*field = median(field);
  return m;
}

// Largest resident set of the process so far (memory-mapped weights that were read count in it).
double peak_resident_gb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) * 1024 / 1e9;
}

}  // namespace

int run_generate(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true}, {"--image", true}, {"--prompt", true}, {"--max-tokens", true},
                   {"--json", false}, {"--dump-logits", true}, {"--threads", true}, {"--ignore-eos", false},
                   {"--no-sliding-window", false}, {"--no-final-softcap", false}, {"--f32-activations", false},
                   {"--task", true}, {"--lang", true}, {"--objects", true}, {"--question", true}, {"--vae", true},
                   {"--overlay", true},
                   {"--beams", true}, {"--length-penalty", true}, {"--temperature", true}, {"--top-k", true},
                   {"--top-p", true}, {"--seed", true}, {"--stop", true}, {"--video", true}, {"--frames", true},
                   {"--lazy-load", false}, {"--no-mmap", false}, {"--warmup", true}, {"--repeat", true}},
                  kGenerateUsage);
  if (args.all("--image").empty() && !args.has("--video"))
    throw UsageError("generate needs at least one --image FILE (or --video FILE)");
  if (args.has("--video") && !args.all("--image").empty()) throw UsageError("use either --image or --video, not both");
  if (args.has("--frames") && !args.has("--video")) throw UsageError("--frames applies to --video only");
  GenerateRequest req;
  req.prompt = prompt_from_flags(args);
  const std::string logits_path = args.get("--dump-logits");
  req.keep_logits = !logits_path.empty();
  try {
    static_cast<DecodingOptions&>(req) =
        tools::decoding_options_from_flags([&](const std::string& flag) { return args.all(flag); });
  } catch (const tools::DecodingOptionsError& e) {
    throw UsageError(e.what());
  }
  LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.sliding_window = !args.has("--no-sliding-window");
  lo.final_softcap = !args.has("--no-final-softcap");
  lo.reference_rounding = !args.has("--f32-activations");
  lo.lazy_load = args.has("--lazy-load");
  lo.copy_weights = args.has("--no-mmap");
  // --vae, else the model's own vae.npz (the embedded model ships one), else no masks.
  lo.mask_decoder_path = args.get("--vae");
  // One request: kept image features could only serve --warmup/--repeat runs, whose timings must include
  // the vision tower.
  lo.image_cache_bytes = 0;
  if (lo.lazy_load && lo.copy_weights) throw UsageError("use either --lazy-load or --no-mmap, not both");
  const int64_t warmup_runs = args.get_int("--warmup", 0, 0, 1000);
  const int64_t measured_runs = args.get_int("--repeat", 1, 1, 1000);

  // Images first: a bad image is reported before the (slower) model load.
  for (const std::string& path : args.all("--image")) req.images.push_back(decode_image_file(path));
  if (args.has("--video"))
    for (VideoFrame& f : sample_video_frames(args.get("--video"), int(args.get_int("--frames", 16, 1, 1024))))
      req.images.push_back(std::move(f.image));
  const auto engine = Engine::load(model_dir_from(args), lo);
  for (const std::string& note : engine->load_notes()) std::cerr << "paligemma: note: " << note << "\n";
  for (int64_t i = 0; i < warmup_runs; ++i) engine->generate(req);
  GenerateResult r;
  std::vector<Timings> run_timings;
  for (int64_t i = 0; i < measured_runs; ++i) {
    r = engine->generate(req);
    run_timings.push_back(r.timings);
  }

  if (req.keep_logits) {
    const int64_t vocab = r.logits.empty() ? engine->info().vocab_rows : int64_t(r.logits[0].size());
    std::vector<float> flat;
    flat.reserve(r.logits.size() * size_t(vocab));
    for (const auto& row : r.logits) flat.insert(flat.end(), row.begin(), row.end());
    write_npy_f32(logits_path, flat.data(), {int64_t(r.logits.size()), vocab});
  }
  // Boxes and masks of detection / segmentation output, on the first image (docs/cli.md "Tasks, boxes and masks").
  const DecodedObjects& objects = r.objects;
  if (args.has("--overlay")) {
    const std::string warning = write_overlay_png(args.get("--overlay"), req.images[0], objects);
    if (!warning.empty()) std::cerr << "paligemma: " << warning << "\n";
  }
  if (objects.needs_mask_decoder) std::cerr << "paligemma: note: " << kMasksNeedVaeNote << "\n";
  if (args.has("--json")) {
    json out{{"prompt_tokens", r.prompt_tokens},
             {"tokens", r.tokens},
             {"text", r.text},
             {"finish_reason", finish_reason_name(r.finish_reason)},
             {"timings", timings_json(median_timings(run_timings), engine->load_seconds())},
             {"isa", kernel_level()},
             {"threads", engine->threads()},
             {"peak_rss_gb", peak_resident_gb()}};
    if (measured_runs > 1) {
      out["runs"] = json::array();
      for (const Timings& t : run_timings) out["runs"].push_back(timings_json(t, engine->load_seconds()));
    }
    if (req.beams > 1) out["score"] = r.score;
    if (has_loc_tokens(r.text)) out["objects"] = objects_json(objects);
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cout << r.text << "\n";
  }
  return 0;
}

}  // namespace pg::cli
