"""Times Hugging Face transformers on a PaliGemma checkpoint the way tools/bench/compare_transformers.py times
the engine: one process, the model loaded once, --warmup unmeasured runs, then --runs measured ones; each run
is image preprocessing + generate() of exactly --new-tokens greedy tokens (min_new_tokens = max_new_tokens, so
<eos> does not end it). Prints one JSON object (per-run figures and their medians) on stdout.

Runs inside the reference root of tools/reference/reference-root.sh (transformers 5.12, torch 2.14); paths are
as the root sees them (its /tmp is DIR/tmp on the host, the project is the working directory):
  sudo tools/reference/reference-root.sh run -- \\
      python3 tools/bench/transformers_baseline.py --model /tmp/pg1_full --threads 2 --runs 3

What is timed, per run:
  preprocess_s  the image processor (AutoImageProcessor of the checkpoint) on the decoded image
  vision_s      model.get_image_features(pixel_values) (SigLIP + projector), a separate call before generate()
  ttft_s        preprocess_s + the time from calling generate() to the first generated token, which the
                streamer receives (generate() runs the vision tower again inside, so this includes it)
  decode_tokens_per_s  (tokens - 1) / (time of the last token - time of the first), from the streamer's
                timestamps: the streamer's put() is called with the prompt first, then once per new token
  total_s       preprocess_s + the whole generate() call
The checkpoint's own dtype is used (config.json "dtype") unless --dtype says otherwise; attention is
transformers' default for the model (recorded in the output).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import sentencepiece as spm
import torch
import transformers
from PIL import Image
from transformers import AutoImageProcessor, PaliGemmaForConditionalGeneration
from transformers.generation.streamers import BaseStreamer


class TokenClock(BaseStreamer):
    """Records when generate() hands over each batch of ids (the prompt first, then every new token)."""

    def __init__(self):
        self.times = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="checkpoint directory (config.json, safetensors, tokenizer.model)")
    ap.add_argument("--image", help="image file (default: image.png in the model directory)")
    ap.add_argument("--prompt", default="caption en")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    ap.add_argument("--new-tokens", type=int, default=16, help="tokens generated per run (default 16)")
    ap.add_argument("--dtype", choices=("bfloat16", "float32", "float16"),
                    help="weights and compute dtype (default: the checkpoint's)")
    args = ap.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.new_tokens < 2 or args.threads < 1:
        ap.error("--runs >= 1, --warmup >= 0, --new-tokens >= 2 and --threads >= 1 are needed")
    return args


def checkpoint_dtype(model_dir):
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    name = config.get("dtype") or config.get("torch_dtype") or config.get("text_config", {}).get("dtype", "float32")
    return name, config


@torch.no_grad()
def one_run(model, processor, image, input_ids, new_tokens, dtype):
    t0 = time.perf_counter()
    pixel_values = processor(images=image, return_tensors="pt")["pixel_values"].to(dtype)
    preprocess_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    model.get_image_features(pixel_values)
    vision_s = time.perf_counter() - t0

    clock = TokenClock()
    t0 = time.perf_counter()
    out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                         token_type_ids=torch.zeros_like(input_ids), pixel_values=pixel_values,
                         max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, streamer=clock)
    generate_s = time.perf_counter() - t0
    generated = out[0, input_ids.shape[1]:].tolist()
    if len(generated) != new_tokens or len(clock.times) != new_tokens + 1:
        raise SystemExit(f"generate() returned {len(generated)} tokens ({len(clock.times)} streamer calls), "
                         f"expected {new_tokens}")
    first, last = clock.times[1], clock.times[-1]
    return {
        "preprocess_s": preprocess_s,
        "vision_s": vision_s,
        "ttft_s": preprocess_s + (first - t0),
        "decode_tokens_per_s": (new_tokens - 1) / (last - first),
        "total_s": preprocess_s + generate_s,
    }, generated


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    stored_dtype, config = checkpoint_dtype(args.model)
    dtype = getattr(torch, args.dtype or stored_dtype)
    t0 = time.perf_counter()
    model = PaliGemmaForConditionalGeneration.from_pretrained(args.model, dtype=dtype).eval()
    processor = AutoImageProcessor.from_pretrained(args.model)
    load_s = time.perf_counter() - t0

    image = Image.open(args.image or os.path.join(args.model, "image.png")).convert("RGB")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.model, "tokenizer.model"))
    image_tokens = config.get("text_config", {}).get("num_image_tokens") or \
        (config["vision_config"]["image_size"] // config["vision_config"]["patch_size"]) ** 2
    image_token_id = config.get("image_token_id", config.get("image_token_index"))
    # the engine's prompt layout (docs/cli.md "generate"): image tokens, <bos>, prompt, "\n"
    ids = [image_token_id] * image_tokens + [sp.bos_id()] + sp.encode(args.prompt + "\n")
    input_ids = torch.tensor([ids], dtype=torch.long)

    for i in range(args.warmup):
        print(f"transformers: warm-up run {i + 1}/{args.warmup}", file=sys.stderr, flush=True)
        one_run(model, processor, image, input_ids, args.new_tokens, dtype)
    runs, tokens = [], []
    for i in range(args.runs):
        timings, tokens = one_run(model, processor, image, input_ids, args.new_tokens, dtype)
        print(f"transformers: run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v:.3f}" for k, v in timings.items()),
              file=sys.stderr, flush=True)
        runs.append(timings)
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    medians["load_s"] = load_s
    print(json.dumps({
        "engine": f"transformers {transformers.__version__}, torch {torch.__version__}",
        "dtype": str(dtype).replace("torch.", ""),
        "attention": model.config.text_config._attn_implementation,
        "image_processor": type(processor).__name__,
        "threads": torch.get_num_threads(),
        "prompt_tokens": len(ids),
        "tokens": tokens,
        "timings": medians,
        "runs": runs,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
    }))


if __name__ == "__main__":
    main()
