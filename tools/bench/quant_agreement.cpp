// Agreement of a quantized model with its original (docs/quantization.md): for every image x prompt, the
// original's greedy tokens are fed to both (teacher forcing) and each step's next-token distributions
// are compared: top-1 agreement and KL(original || quantized).
//
//   pg_quant_agreement --reference DIR --candidate FILE.gguf --image IMG [--image ...]
//                      --prompt TEXT [--prompt ...] [--steps 16] [--threads N]
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loader/checkpoint.h"
#include "tokenizer/tokenizer.h"
#include "model/paligemma.h"
#include "convert/quantize.h"
#include "eval/agreement.h"
#include "paligemma/image.h"
#include "tasks/prompt.h"

namespace {

struct Loaded {
  std::unique_ptr<pg::Checkpoint> checkpoint;
  std::unique_ptr<pg::PaliGemmaModel> model;
};

Loaded load(const std::string& path) {
  Loaded l;
  l.checkpoint = std::make_unique<pg::Checkpoint>(path);
  l.model = std::make_unique<pg::PaliGemmaModel>(l.checkpoint->config(),
                                                 pg::bind_weights(l.checkpoint->config(), l.checkpoint->lookup()));
  return l;
}

int usage(const char* why) {
  std::cerr << "pg_quant_agreement: " << why
            << "\nusage: pg_quant_agreement --reference DIR --candidate FILE --image IMG [--image ...] --prompt TEXT"
               " [--prompt ...] [--steps N] [--threads N]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::vector<std::string>> flags;
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc) return usage(("bad argument " + name).c_str());
    flags[name].push_back(argv[i + 1]);
  }
  for (const char* required : {"--reference", "--candidate", "--image", "--prompt"})
    if (!flags.count(required)) return usage((std::string("missing ") + required).c_str());
  try {
    const int64_t steps = flags.count("--steps") ? std::atoll(flags["--steps"].back().c_str()) : 16;
    if (steps < 1) return usage("--steps must be at least 1");
    if (flags.count("--threads")) omp_set_num_threads(std::atoi(flags["--threads"].back().c_str()));
    const Loaded reference = load(flags["--reference"].back()), candidate = load(flags["--candidate"].back());
    const pg::Tokenizer tokenizer(reference.checkpoint->tokenizer_path());
    const pg::PaliGemmaConfig& c = reference.model->config();
    nlohmann::json cases = nlohmann::json::array();
    pg::Agreement all;
    for (const std::string& image_path : flags["--image"]) {
      const pg::ImageRGB8 image = pg::decode_image_file(image_path);
      const std::vector<float> pixels =
          pg::normalize_to_chw(pg::resize_bicubic_pil(image, int(c.vision.image_size), int(c.vision.image_size)));
      for (const std::string& prompt : flags["--prompt"]) {
        const std::vector<int32_t> ids =
            pg::build_prompt_ids(tokenizer, int32_t(c.image_token_id), c.vision.tokens(), prompt);
        const pg::Agreement a = pg::teacher_forced_agreement(*reference.model, *candidate.model, pixels, ids, steps);
        nlohmann::json per_step = nlohmann::json::array();
        for (const pg::AgreementStep& s : a.steps) {
          per_step.push_back({{"reference", s.reference_token},
                              {"candidate", s.candidate_token},
                              {"kl", s.kl},
                              {"reference_margin", s.reference_margin}});
          all.steps.push_back(s);
        }
        cases.push_back({{"image", image_path}, {"prompt", prompt}, {"top1", a.top1()}, {"mean_kl", a.mean_kl()},
                         {"max_kl", a.max_kl()}, {"steps", per_step}});
        std::fprintf(stderr, "%s | %s: top-1 %.3f, mean KL %.3g, max KL %.3g\n", image_path.c_str(), prompt.c_str(),
                     a.top1(), a.mean_kl(), a.max_kl());
      }
    }
    std::cout << nlohmann::json{{"top1", all.top1()}, {"mean_kl", all.mean_kl()}, {"max_kl", all.max_kl()},
                                {"steps", all.steps.size()}, {"cases", cases}}
                     .dump()
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "pg_quant_agreement: " << e.what() << "\n";
    return 1;
  }
}
