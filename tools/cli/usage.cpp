// The usage text of each subcommand (`paligemma CMD --help`). Args checks, when help is asked for, that every
// flag a command accepts is named in its text, so the two cannot drift apart.
#include "commands.h"

namespace pg::cli {

const char* const kGenerateUsage =
    "usage: paligemma generate [-m DIR] --image FILE [--image FILE ...] -p TEXT [-n N] [--json] [options]\n"
    "  -m, --model DIR        hub model directory or a paligemma quantize .gguf file (default: the embedded model)\n"
    "  --image FILE           JPEG, PNG, WebP, BMP, GIF, TGA or PNM; repeat for several images\n"
    "  --video FILE           N frames (--frames N, default 16) at evenly spaced times, as N images\n"
    "  -p, --prompt TEXT      e.g. \"caption en\", \"answer en what is this?\", \"detect cat ; dog\"\n"
    "  -n, --max-tokens N     generated tokens at most (default 64; the model's context ends it earlier,\n"
    "                         with finish_reason \"length\")\n"
    "  --json                 one JSON object: prompt_tokens, tokens, text, finish_reason, objects, timings\n"
    "  --dump-logits FILE     float32 .npy [generated tokens, vocab] of the logits each token came from\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  --ignore-eos           generate exactly --max-tokens tokens\n"
    "  --no-sliding-window    Gemma 2: attend globally on every layer (big_vision) instead of transformers' window\n"
    "  --no-final-softcap     Gemma 2: leave the final logit soft-cap out, as transformers 5.x does\n"
    "  --f32-activations      bf16/f16 checkpoints: keep activations in float32 instead of rounding them\n"
    "                         where transformers does\n"
    "  --lazy-load            read weight pages on first use instead of during load (models larger than memory)\n"
    "  --no-mmap              copy the weights into newly allocated memory instead of mapping the files\n"
    "  --warmup N --repeat N  benchmark: N unmeasured runs, then N measured ones; --json timings are the\n"
    "                         medians (\"runs\" lists each), the text is the last run's\n"
    "  decoding (default greedy; docs/cli.md \"Decoding, video and batch\"):\n"
    "  --beams K              beam search with K (1 to 8) beams (transformers' num_beams); --length-penalty L (1.0)\n"
    "  --temperature T        sample: logits / T (0: greedy), then --top-k K, then --top-p P; --seed S (0)\n"
    "                         (--top-k or --top-p alone also samples, at temperature 1)\n"
    "  --stop TEXT            end when the text contains TEXT (repeatable); the text is cut before it\n"
    "  tasks (docs/cli.md \"Tasks, boxes and masks\"), instead of --prompt:\n"
    "  --task NAME            caption | describe | ocr | answer | question | detect | segment\n"
    "  --lang L               caption, describe, answer, question: language code (default en)\n"
    "  --objects \"a ; b\"      detect, segment: what to find\n"
    "  --question TEXT        answer: the question; question: the answer to write a question for\n"
    "  --vae FILE.npz         segmentation masks from vae-oid.npz (--json objects get \"mask\"); default: the\n"
    "                         model's own (vae.npz in its directory, or the one a quantized file carries)\n"
    "  --overlay OUT.png      boxes, masks and labels drawn on the first image\n";

const char* const kBatchUsage =
    "usage: paligemma batch [-m DIR] --input REQUESTS.jsonl --output RESULTS.jsonl [options]\n"
    "  one JSON request per line -> one JSON result per line, appended as each is done; rerun to resume\n"
    "  -m, --model DIR        model directory or .gguf file (default: the embedded model)\n"
    "  --input FILE           requests: {\"id\", \"image\" | \"images\" | \"video\", \"prompt\" | \"task\", ...}\n"
    "  --output FILE          results; the ids it already holds are skipped\n"
    "  --vae FILE.npz         segmentation masks (default: the model's own)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  --max-line-bytes N     a longer request line is reported (line_too_long), not parsed (default 1048576)\n"
    "  --image-cache-mb N     keep the image features of recent images for repeated images (default 256; 0: off)\n"
    "  --no-mmap              copy the weights into memory instead of mapping the files\n"
    "  --no-sliding-window, --no-final-softcap, --f32-activations   as for generate\n";

const char* const kServeUsage =
    "usage: paligemma serve [-m DIR] [--host 127.0.0.1] [--port 8080] [options]\n"
    "  HTTP API (docs/server.md): POST /v1/generate, POST /v1/chat/completions, GET /v1/models, /health, /\n"
    "  -m, --model DIR        model directory or .gguf file (default: the embedded model)\n"
    "  --vae FILE.npz         segmentation masks (default: the model's own)\n"
    "  --host ADDR            address to listen on (default 127.0.0.1)\n"
    "  --port P               port (default 8080); a port in use is an error\n"
    "  --api-key KEY          /v1/* needs \"Authorization: Bearer KEY\"\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  --max-body-mb N        request body limit (default 32)\n"
    "  --max-image-pixels N   per decoded image (default 50000000)\n"
    "  --max-images N         per request (default 16)\n"
    "  --max-tokens-limit N   max_tokens a request may ask for (default 1024)\n"
    "  --max-queue N          waiting requests before 503 (default 64)\n"
    "  --max-batch N          sequences decoded together (default 8)\n"
    "  --image-cache-mb N     keep the image features of recent images for repeated images (default 256; 0: off)\n"
    "  --no-mmap              copy the weights into memory instead of mapping the files\n"
    "  --quiet                no log line per request\n";

const char* const kParseUsage =
    "usage: paligemma parse --text TEXT (--width W --height H | --overlay-image IN --overlay OUT.png) [options]\n"
    "  boxes and masks of detect or segment output, without running a model\n"
    "  --text TEXT            the model's output, <loc>/<seg> pieces included\n"
    "  --width W --height H   the original image's size (boxes are in its pixels)\n"
    "  --overlay-image IN     the original image (gives the size); with --overlay OUT.png draws on it\n"
    "  --overlay OUT.png      boxes, masks and labels drawn on --overlay-image\n"
    "  --vae FILE.npz         segmentation masks; default: the vae.npz of --model\n"
    "  -m, --model DIR        whose vae.npz decodes the masks (default: the embedded model)\n"
    "  --mask-png PREFIX      PREFIX<i>.png: object i's mask\n"
    "  --json                 {\"objects\": [...], \"text\": ...}\n";

const char* const kQuantizeUsage =
    "usage: paligemma quantize [-m DIR] --type q8_0|q4_0 --output FILE.gguf [-t N]\n"
    "  one GGUF file with 8- or 4-bit weights (docs/quantization.md) that carries config.json, tokenizer.model\n"
    "  and, when the model directory has one, its vae.npz; --model FILE.gguf loads it\n"
    "  -m, --model DIR        hub model directory (default: the embedded model)\n"
    "  --type T               q8_0 or q4_0\n"
    "  --output FILE.gguf     the file to write\n"
    "  -t, --threads N        worker threads (default: all cores)\n";

}  // namespace pg::cli
