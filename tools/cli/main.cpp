// The `paligemma` command-line program.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/npy.h"
#include "paligemma/engine.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kUsage =
    "usage: paligemma generate [--model DIR] --image FILE [--image FILE ...] --prompt TEXT\n"
    "                          [--max-tokens N] [--json] [--dump-logits FILE.npy] [--threads N]\n"
    "                          [--ignore-eos] [--no-sliding-window] [--no-final-softcap]\n"
    "                          [--f32-activations]\n"
    "  --model DIR            hub model directory (default: the embedded model)\n"
    "  --image FILE           JPEG, PNG, WebP, BMP, GIF, TGA or PNM; repeat for several images\n"
    "  --prompt TEXT          e.g. \"caption en\", \"answer en what is this?\", \"detect cat ; dog\"\n"
    "  --max-tokens N         generated tokens at most (default 64)\n"
    "  --json                 one JSON object: prompt_tokens, tokens, text, timings\n"
    "  --dump-logits FILE     float32 .npy [generated tokens, vocab] of the logits each token came from\n"
    "  --threads N            worker threads (default: all cores)\n"
    "  --ignore-eos           generate exactly --max-tokens tokens\n"
    "  --no-sliding-window    Gemma 2: attend globally on every layer (big_vision) instead of transformers' window\n"
    "  --no-final-softcap     Gemma 2: leave the final logit soft-cap out, as transformers 5.x does\n"
    "  --f32-activations      bf16/f16 checkpoints: keep activations in float32 instead of rounding them\n"
    "                         where transformers does\n"
    "       paligemma --help\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The embedded default model: next to an installed binary (../share/paligemma/default-model), else
// the source tree's copy.
std::string default_model_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share" / "paligemma" / "default-model";
    if (fs::is_directory(installed)) return installed.string();
  }
  return PG_DEFAULT_MODEL_DIR;
}

// Flags of one subcommand: "--name value" or "--name" switches.
class Args {
 public:
  Args(int argc, char** argv, int first, const std::map<std::string, bool>& takes_value) {
    for (int i = first; i < argc; ++i) {
      const std::string a = argv[i];
      auto it = takes_value.find(a);
      if (it == takes_value.end()) throw UsageError("unknown option " + a);
      if (it->second) {
        if (i + 1 >= argc) throw UsageError("option " + a + " needs a value");
        values_[a].push_back(argv[++i]);
      } else {
        values_[a].push_back("");
      }
    }
  }
  bool has(const std::string& k) const { return values_.count(k) > 0; }
  const std::vector<std::string>& all(const std::string& k) const {
    static const std::vector<std::string> none;
    auto it = values_.find(k);
    return it == values_.end() ? none : it->second;
  }
  std::string get(const std::string& k, const std::string& fallback = "") const {
    const auto& v = all(k);
    if (v.size() > 1) throw UsageError("option " + k + " given more than once");
    return v.empty() ? fallback : v[0];
  }
  int64_t get_int(const std::string& k, int64_t fallback, int64_t lo, int64_t hi) const {
    const std::string s = get(k);
    if (s.empty()) return fallback;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno || *end || end == s.c_str() || v < lo || v > hi)
      throw UsageError("option " + k + " needs a whole number from " + std::to_string(lo) + " to " +
                       std::to_string(hi) + ", got \"" + s + "\"");
    return v;
  }

 private:
  std::map<std::string, std::vector<std::string>> values_;
};

json timings_json(const pg::Timings& t, double load_s) {
  return json{{"load_s", load_s},         {"preprocess_s", t.preprocess_s},
              {"vision_s", t.vision_s},   {"prefill_s", t.prefill_s},
              {"ttft_s", t.ttft_s},       {"decode_tokens_per_s", t.decode_tokens_per_s},
              {"total_s", t.total_s}};
}

int run_generate(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {{"--model", true}, {"--image", true}, {"--prompt", true}, {"--max-tokens", true},
                   {"--json", false}, {"--dump-logits", true}, {"--threads", true}, {"--ignore-eos", false},
                   {"--no-sliding-window", false}, {"--no-final-softcap", false}, {"--f32-activations", false}});
  if (args.all("--image").empty()) throw UsageError("generate needs at least one --image FILE");
  if (!args.has("--prompt")) throw UsageError("generate needs --prompt TEXT (e.g. --prompt \"caption en\")");
  pg::GenerateRequest req;
  req.prompt = args.get("--prompt");
  req.max_tokens = args.get_int("--max-tokens", 64, 1, 1 << 20);
  req.ignore_eos = args.has("--ignore-eos");
  const std::string logits_path = args.get("--dump-logits");
  req.keep_logits = !logits_path.empty();
  pg::LoadOptions lo;
  lo.threads = int(args.get_int("--threads", 0, 1, 1024));
  lo.sliding_window = !args.has("--no-sliding-window");
  lo.final_softcap = !args.has("--no-final-softcap");
  lo.reference_rounding = !args.has("--f32-activations");

  // Images first: a bad image is reported before the (slower) model load.
  for (const std::string& path : args.all("--image")) req.images.push_back(pg::decode_image_file(path));
  const auto engine = pg::Engine::load(args.get("--model", default_model_dir()), lo);
  const pg::GenerateResult r = engine->generate(req);

  if (req.keep_logits) {
    const int64_t vocab = r.logits.empty() ? engine->info().vocab_rows : int64_t(r.logits[0].size());
    std::vector<float> flat;
    flat.reserve(r.logits.size() * size_t(vocab));
    for (const auto& row : r.logits) flat.insert(flat.end(), row.begin(), row.end());
    pg::write_npy_f32(logits_path, flat.data(), {int64_t(r.logits.size()), vocab});
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

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) throw UsageError("missing command");
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return 0;
    }
    if (cmd == "generate") return run_generate(argc, argv);
    throw UsageError("unknown command \"" + cmd + "\"");
  } catch (const UsageError& e) {
    std::cerr << "paligemma: " << e.what() << " (see paligemma --help)\n";
    return 2;
  } catch (const pg::Error& e) {
    std::cerr << "paligemma: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "paligemma: out of memory (try a smaller model, fewer images or fewer --max-tokens)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "paligemma: unexpected error: " << e.what() << "\n";
    return 1;
  }
}
