// `paligemma generate`: text for images and a prompt.
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "io/npy.h"
#include "paligemma/engine.h"

namespace pg::cli {

using nlohmann::json;

namespace {

json timings_json(const Timings& t, double load_s) {
  return json{{"load_s", load_s},         {"preprocess_s", t.preprocess_s},
              {"vision_s", t.vision_s},   {"prefill_s", t.prefill_s},
              {"ttft_s", t.ttft_s},       {"decode_tokens_per_s", t.decode_tokens_per_s},
              {"total_s", t.total_s}};
}

}  // namespace

int run_generate(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true}, {"--image", true}, {"--prompt", true}, {"--max-tokens", true},
                   {"--json", false}, {"--dump-logits", true}, {"--threads", true}, {"--ignore-eos", false},
                   {"--no-sliding-window", false}, {"--no-final-softcap", false}, {"--f32-activations", false}});
  if (args.all("--image").empty()) throw UsageError("generate needs at least one --image FILE");
  if (!args.has("--prompt")) throw UsageError("generate needs --prompt TEXT (e.g. --prompt \"caption en\")");
  GenerateRequest req;
  req.prompt = args.get("--prompt");
  req.max_tokens = args.get_int("--max-tokens", 64, 1, 1 << 20);
  req.ignore_eos = args.has("--ignore-eos");
  const std::string logits_path = args.get("--dump-logits");
  req.keep_logits = !logits_path.empty();
  LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.sliding_window = !args.has("--no-sliding-window");
  lo.final_softcap = !args.has("--no-final-softcap");
  lo.reference_rounding = !args.has("--f32-activations");

  // Images first: a bad image is reported before the (slower) model load.
  for (const std::string& path : args.all("--image")) req.images.push_back(decode_image_file(path));
  const auto engine = Engine::load(args.get("--model", default_model_dir()), lo);
  const GenerateResult r = engine->generate(req);

  if (req.keep_logits) {
    const int64_t vocab = r.logits.empty() ? engine->info().vocab_rows : int64_t(r.logits[0].size());
    std::vector<float> flat;
    flat.reserve(r.logits.size() * size_t(vocab));
    for (const auto& row : r.logits) flat.insert(flat.end(), row.begin(), row.end());
    write_npy_f32(logits_path, flat.data(), {int64_t(r.logits.size()), vocab});
  }
  if (args.has("--json")) {
    json out{{"prompt_tokens", r.prompt_tokens},
             {"tokens", r.tokens},
             {"text", r.text},
             {"timings", timings_json(r.timings, engine->load_seconds())}};
    std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cout << r.text << "\n";
  }
  return 0;
}

}  // namespace pg::cli
