// The `paligemma` command-line program: dispatches to one subcommand per file (tools/cli/*_command.cpp).
#include <malloc.h>

#include <cstdlib>

#include <iostream>
#include <map>
#include <string>

#include "args.h"
#include "commands.h"
#include "paligemma/error.h"

namespace {

const char* const kUsage =
    "usage: paligemma generate [--model DIR] --image FILE [--image FILE ...] --prompt TEXT\n"
    "                          [--max-tokens N] [--json] [--dump-logits FILE.npy] [--threads N]\n"
    "                          [--ignore-eos] [--no-sliding-window] [--no-final-softcap]\n"
    "                          [--f32-activations] [--lazy-load | --no-mmap] [--warmup N] [--repeat N]\n"
    "  --model DIR            hub model directory or a paligemma quantize .gguf file (default: the embedded model)\n"
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
    "  --lazy-load            read weight pages on first use instead of during load (models larger than memory)\n"
    "  --no-mmap              copy the weights into newly allocated memory instead of mapping the files\n"
    "                         (also for batch and serve; docs/benchmarks.md says when it is faster)\n"
    "  --warmup N --repeat N  benchmark: N unmeasured runs, then N measured ones; --json timings are the\n"
    "                         medians (\"runs\" lists each), the text is the last run's\n"
    "  decoding (default greedy; README \"Decoding, video and batch\"):\n"
    "  --beams K              beam search with K beams (transformers' num_beams); --length-penalty L (1.0)\n"
    "  --temperature T        sample: logits / T (0: greedy), then --top-k K, then --top-p P; --seed S (0)\n"
    "  --stop TEXT            end when the text contains TEXT (repeatable); the text is cut before it\n"
    "  --video FILE           N frames (--frames N, default 16) at evenly spaced times, as N images\n"
    "  tasks (README \"Tasks, boxes and masks\"), instead of --prompt:\n"
    "  --task NAME            caption | describe | ocr | answer | question | detect | segment\n"
    "  --lang L               caption, describe, answer, question: language code (default en)\n"
    "  --objects \"a ; b\"      detect, segment: what to find\n"
    "  --question TEXT        answer: the question; question: the answer to write a question for\n"
    "  --vae FILE.npz         segmentation masks from vae-oid.npz (--json objects get \"mask\");\n"
    "                         default: vae.npz in the model directory, when it has one (the embedded model does)\n"
    "  --overlay OUT.png      boxes, masks and labels drawn on the first image\n"
    "       paligemma batch [--model DIR] [--vae FILE.npz] --input REQUESTS.jsonl --output RESULTS.jsonl [--threads N]\n"
    "                       [--no-mmap]\n"
    "                       one JSON request per line -> one JSON result per line; rerun to resume\n"
    "       paligemma serve [--model DIR] [--vae FILE.npz] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--threads N]\n"
    "                       [--max-body-mb 32] [--max-image-pixels 50000000] [--max-images 16]\n"
    "                       [--max-tokens-limit 1024] [--max-queue 64] [--max-batch 8] [--no-mmap]\n"
    "       paligemma parse --text TEXT (--width W --height H | --overlay-image IN --overlay OUT.png)\n"
    "                       [--vae FILE.npz | --model DIR] [--mask-png PREFIX] [--json]\n"
    "                       boxes / masks of detect or segment output (PREFIX<i>.png: object i's mask)\n"
    "       paligemma quantize --model DIR --type q8_0|q4_0 --output FILE.gguf [--threads N]\n"
    "                       one GGUF file with 8- or 4-bit weights (docs/quantization.md); --model FILE.gguf loads it\n"
    "       paligemma --help\n";

// libgomp's default wait policy spins a waiting thread for a while; when another process holds a core, the
// spinning thread burns the time slice that the thread it waits for needs, and a 2-core machine with one busy
// core ran a batch 3-12 times slower than with one thread (docs/cli.md, "Threads"). A passive wait costs
// little when the cores are free. libgomp reads the policy once, in its own initializer, which runs before
// main() and before constructors: functions in .preinit_array run earlier still, so the default is set there.
// An OMP_WAIT_POLICY or GOMP_SPINCOUNT the user set wins.
void prefer_passive_openmp_wait(int, char**, char**) {
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
}
__attribute__((section(".preinit_array"), used)) void (*const kPreinitOpenmpWait)(int, char**, char**) =
    prefer_passive_openmp_wait;

}  // namespace

int main(int argc, char** argv) {
  using namespace pg::cli;
  // The decoder allocates tens of MB of activations per layer; with glibc's defaults every such block is
  // mmap'ed and returned to the kernel after each layer, then faulted in again (about 2 s of a 3B model's
  // time to first token, docs/kernels.md). Keep freed memory in the process instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const std::map<std::string, int (*)(int, char**)> commands = {
      {"generate", run_generate},
      {"serve", run_serve},
      {"batch", run_batch},
      {"parse", run_parse},
      {"quantize", run_quantize},
  };
  try {
    if (argc < 2) throw UsageError("missing command");
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return 0;
    }
    auto it = commands.find(cmd);
    if (it == commands.end()) throw UsageError("unknown command \"" + cmd + "\"");
    return it->second(argc, argv);
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
