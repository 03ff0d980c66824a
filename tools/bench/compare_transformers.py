#!/usr/bin/env python3
"""Side-by-side benchmark of the engine and Hugging Face transformers on the same full-size checkpoint, image and
prompt, plus the machine's memory read bandwidth and what it allows for decoding. One command prints everything.

  python3 tools/bench/compare_transformers.py                     # PaliGemma 1 3B-224 bf16, engine vs transformers
  python3 tools/bench/compare_transformers.py --all               # every checkpoint, 224 -> 448 -> 896, 1 vs N threads
  python3 tools/bench/compare_transformers.py --resolution 448 --runs 5
  python3 tools/bench/compare_transformers.py --model q8.gguf --image img.png --engine-only
  python3 tools/bench/compare_transformers.py --all --write-table docs/tables/compare_transformers.md

Per configuration:
  engine        `paligemma generate --json --ignore-eos --max-tokens 16 --repeat R+1` in a fresh process; the
                first run (the first request after load) is reported on its own, the figures are medians of the
                other R.
  transformers  tools/bench/transformers_baseline.py in the reference root (tools/reference/reference-root.sh,
                through sudo when not root), same threads, warm-up + R runs, medians (its docstring says
                exactly what is timed).
  bound         decode reads every decoder weight and the output projection once per token; bytes per token
                come from the checkpoint's safetensors headers, bandwidth from pg_memory_bandwidth (median of
                several passes, same threads); bound = bandwidth / bytes.

Checkpoints (random weights of the real shapes; create them with tools/reference/make_fixtures.py, see
docs/benchmarks.md) are looked up in --checkpoints (default: the reference root's /tmp): pg1_full (PaliGemma 1 3B-224 bf16), pg1_full_448,
pg1_full_896, pg2_full (PaliGemma 2 3B-224 bf16), pg1_full_f32 (PaliGemma 1 3B-224 float32). A missing one is
skipped with the command that makes it. Host Python 3 standard library only.

--write-table FILE writes the summary as a markdown table, one row per configuration with the date, the CPU
model (/proc/cpuinfo "model name") and the engine's kernel level as data; rows already in FILE for another CPU,
kernel level, checkpoint, dtype, thread count or weight mode are kept, so FILE holds the latest figures of each.
"""

import argparse
import datetime
import json
import os
import statistics
import struct
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REFERENCE_SCRIPT = os.path.join(REPO, "tools", "reference", "reference-root.sh")
DEFAULT_REFERENCE_ROOT = os.environ.get("PG_REFERENCE_ROOT") or "/var/lib/paligemma-reference"
PROJECT_INSIDE = "/project"  # where reference-root.sh mounts the project inside the root

# (family, resolution, dtype) -> checkpoint directory name under --checkpoints, and the options of
# tools/reference/make_fixtures.py --full-size that make it.
CHECKPOINTS = {
    ("pg1", 224, "bf16"): ("pg1_full", ""),
    ("pg1", 448, "bf16"): ("pg1_full_448", " --full-size-resolution 448"),
    ("pg1", 896, "bf16"): ("pg1_full_896", " --full-size-resolution 896 --full-size-no-reference"),
    ("pg2", 224, "bf16"): ("pg2_full", " --full-size-gen 2"),
    ("pg1", 224, "f32"): ("pg1_full_f32", " --full-size-dtype float32"),
}
TITLES = {"pg1": "PaliGemma 1 3B", "pg2": "PaliGemma 2 3B"}
DTYPE_SIZES = {"F32": 4, "BF16": 2, "F16": 2}


def log(message):
    print(message, file=sys.stderr, flush=True)


def load_average():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def cpu_name():
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def safetensors_headers(model_dir):
    """{tensor name: (dtype, byte count)} over every *.safetensors file of a checkpoint directory."""
    tensors = {}
    for name in sorted(os.listdir(model_dir)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(model_dir, name), "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for key, entry in header.items():
            if key != "__metadata__":
                begin, end = entry["data_offsets"]
                tensors[key] = (entry["dtype"], end - begin)
    return tensors


def decode_bytes_per_token(model_dir):
    """Bytes one decode step reads: every language-model weight plus the output projection. With tied
    embeddings (PaliGemma's case) the projection is the embedding matrix, counted once; with a separate lm_head
    the embedding contributes one row, which is negligible and left out."""
    tensors = safetensors_headers(model_dir)
    text = {k: b for k, (_, b) in tensors.items() if "language_model" in k or k.startswith("lm_head")}
    head = [k for k in text if "lm_head" in k]
    embed = [k for k in text if "embed_tokens" in k]
    total = sum(text.values())
    if head and embed:
        total -= sum(text[k] for k in embed)
    return total


def memory_bandwidth(build, threads):
    out = subprocess.run([os.path.join(build, "pg_memory_bandwidth"), "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_engine(args, model, image, threads, runs):
    cmd = [os.path.join(args.build, "paligemma"), "generate", "--model", model, "--image", image,
           "--prompt", args.prompt, "--max-tokens", str(args.tokens), "--ignore-eos", "--json",
           "--threads", str(threads), "--repeat", str(runs + 1)] + args.engine_flag
    log("engine: " + " ".join(cmd))
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"paligemma failed ({proc.returncode}): {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    measured = out["runs"][1:]
    # Scalar timings only: decode_step_s (a list per run) stays in "runs".
    medians = {k: statistics.median(r[k] for r in measured) for k, v in measured[0].items()
               if k != "load_s" and isinstance(v, (int, float))}
    medians["load_s"] = out["timings"]["load_s"]
    return {"timings": medians, "first_request": out["runs"][0], "runs": out["runs"], "tokens": out["tokens"],
            "prompt_tokens": len(out["prompt_tokens"]), "isa": out.get("isa"), "threads": out.get("threads"),
            "peak_rss_gb": out.get("peak_rss_gb"), "wall_s": time.time() - t0}


def reference_command(args):
    """The command line that runs what follows it inside the reference root (sudo unless already root)."""
    sudo = ["sudo"] if os.geteuid() != 0 else []
    return sudo + [args.reference_script, "--root", args.reference_root, "run", "--"]


def inside_reference_root(args, path):
    """The path under which the reference root sees a host path (its root, or the project at /project)."""
    path = os.path.abspath(path)
    root = os.path.abspath(args.reference_root)
    if path.startswith(root + os.sep):
        return path[len(root):]
    if path.startswith(REPO + os.sep):
        return PROJECT_INSIDE + path[len(REPO):]
    raise RuntimeError(f"{path} is neither under {root} nor under the project, so the reference root cannot read "
                       "it; put the checkpoint under the root's /tmp (" + os.path.join(root, "tmp") + ")")


def run_transformers(args, model, image, threads, runs):
    cmd = reference_command(args) + ["python3", "tools/bench/transformers_baseline.py", "--model", inside_reference_root(args, model),
           "--image", inside_reference_root(args, image), "--prompt", args.prompt, "--threads", str(threads),
           "--runs", str(runs), "--warmup", "1", "--new-tokens", str(args.tokens)]
    log("transformers: " + " ".join(cmd))
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"transformers_baseline.py failed ({proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.time() - t0
    return out


def measure(args, label, model, image, threads, runs, with_transformers, bandwidths):
    if threads not in bandwidths:
        bandwidths[threads] = memory_bandwidth(args.build, threads)
        log(f"memory read bandwidth, {threads} threads: {bandwidths[threads]['read_gb_per_s']:.1f} GB/s")
    result = {"label": label, "model": model, "threads": threads, "runs": runs, "load_average_before": load_average(),
              "bandwidth_gb_per_s": bandwidths[threads]["read_gb_per_s"]}
    result["decode_bytes"] = decode_bytes_per_token(model) if os.path.isdir(model) else None
    if result["decode_bytes"]:
        result["bound_tokens_per_s"] = result["bandwidth_gb_per_s"] * 1e9 / result["decode_bytes"]
    result["engine"] = run_engine(args, model, image, threads, runs)
    if with_transformers:
        result["transformers"] = run_transformers(args, model, image, threads, runs)
    result["load_average_after"] = load_average()
    return result


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def print_configuration(r):
    e = r["engine"]
    t = r.get("transformers")
    bound = r.get("bound_tokens_per_s")
    print(f"\n## {r['label']}: {r['model']}")
    print(f"{e['prompt_tokens']} prompt tokens, {len(e['tokens'])} new tokens, {r['threads']} threads, medians of "
          f"{r['runs']} runs; engine ISA {e['isa']}; load average {r['load_average_before']} -> "
          f"{r['load_average_after']}")
    if bound:
        print(f"decode bound: {r['bandwidth_gb_per_s']:.1f} GB/s / {r['decode_bytes'] / 1e9:.2f} GB per token = "
              f"{bound:.2f} tokens/s")
    rows = [("preprocess_s", "preprocess_s"), ("vision_s", "vision_s"), ("ttft_s", "ttft_s"),
            ("decode tokens/s", "decode_tokens_per_s"), ("total_s", "total_s"), ("load_s", "load_s")]
    print(f"{'':24}{'engine':>10}{'transformers':>14}{'engine/tf':>11}")
    for name, key in rows:
        ev = e["timings"].get(key)
        tv = t["timings"].get(key) if t else None
        ratio = ev / tv if ev is not None and tv else None
        print(f"{name:24}{fmt(ev, 3):>10}{fmt(tv, 3):>14}{fmt(ratio):>11}")
    if bound:
        share_t = fmt(100 * t["timings"]["decode_tokens_per_s"] / bound, 0) + " %" if t else "-"
        print(f"{'decode / bound':24}{fmt(100 * e['timings']['decode_tokens_per_s'] / bound, 0) + ' %':>10}"
              f"{share_t:>14}")
    print(f"{'first request ttft_s':24}{fmt(e['first_request']['ttft_s'], 3):>10}{'':>14}"
          f"   (the engine's first run after load)")
    print(f"{'peak RSS GB':24}{fmt(e['peak_rss_gb']):>10}{fmt(t['peak_rss_gb']) if t else '-':>14}")
    if t:
        same = e["tokens"] == t["tokens"]
        print(f"same generated tokens: {'yes' if same else 'no'}; transformers: {t['engine']}, {t['dtype']}, "
              f"attention {t['attention']}, {t['image_processor']}")


def print_summary(results):
    print("\n## Summary (medians; ratio = engine / transformers; decode share of the memory-read bound)")
    columns = [("configuration", 30), ("thr", 4), ("TTFT eng", 9), ("TTFT tf", 9), ("ratio", 7), ("dec eng", 9),
               ("dec tf", 8), ("ratio", 7), ("bound", 7), ("eng %", 6), ("tf %", 6)]
    print(" ".join(f"{name:<{w}}" if i == 0 else f"{name:>{w}}" for i, (name, w) in enumerate(columns)))
    for r in results:
        e, t = r["engine"]["timings"], r.get("transformers", {}).get("timings")
        bound = r.get("bound_tokens_per_s")
        cells = [r["label"], str(r["threads"]), fmt(e["ttft_s"]), fmt(t["ttft_s"] if t else None),
                 fmt(e["ttft_s"] / t["ttft_s"] if t else None), fmt(e["decode_tokens_per_s"]),
                 fmt(t["decode_tokens_per_s"] if t else None),
                 fmt(e["decode_tokens_per_s"] / t["decode_tokens_per_s"] if t else None), fmt(bound),
                 fmt(100 * e["decode_tokens_per_s"] / bound if bound else None, 0),
                 fmt(100 * t["decode_tokens_per_s"] / bound if bound and t else None, 0)]
        print(" ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, (_, w)) in enumerate(zip(cells, columns))))


def model_dtype(model):
    """The checkpoint's weight dtype as the table names it: the dtype holding most bytes of a safetensors
    directory, or gguf (with q8_0 / q4_0 when the file name says which) for a quantized file."""
    if os.path.isdir(model):
        sizes = {}
        for dtype, size in safetensors_headers(model).values():
            sizes[dtype] = sizes.get(dtype, 0) + size
        return max(sizes, key=sizes.get).lower() if sizes else "?"
    name = os.path.basename(model).lower()
    kind = next((q for q in ("q8_0", "q4_0") if q in name), None)
    return f"gguf {kind}" if kind else os.path.splitext(name)[1].lstrip(".") or "?"


TABLE_COLUMNS = ["date", "CPU", "CPUs", "kernel level", "model", "dtype", "engine weights", "threads", "runs",
                 "vision s (engine / tf)", "TTFT s engine", "TTFT s tf", "TTFT ratio", "decode tok/s engine",
                 "decode tok/s tf", "decode ratio", "read GB/s", "bound tok/s", "engine % of bound",
                 "tf % of bound", "peak RSS GB (engine / tf)", "same tokens"]
TABLE_KEY = ["CPU", "kernel level", "model", "dtype", "engine weights", "threads"]


def table_row(args, r, date):
    e, t = r["engine"], r.get("transformers")
    et, tt = e["timings"], t["timings"] if t else None
    bound = r.get("bound_tokens_per_s")

    def ratio(key):
        return fmt(et[key] / tt[key]) if tt and et.get(key) is not None and tt.get(key) else "-"

    weights = "--lazy-load" if args.lazy_load else "--no-mmap" if args.no_mmap else "mapped"
    row = {
        "date": date, "CPU": cpu_name(), "CPUs": str(os.cpu_count()), "kernel level": str(e["isa"]),
        "model": r["label"], "dtype": r["dtype"], "engine weights": weights, "threads": str(r["threads"]),
        "runs": str(r["runs"]),
        "vision s (engine / tf)": f"{fmt(et.get('vision_s'))} / {fmt(tt.get('vision_s') if tt else None)}",
        "TTFT s engine": fmt(et["ttft_s"]), "TTFT s tf": fmt(tt["ttft_s"] if tt else None),
        "TTFT ratio": ratio("ttft_s"), "decode tok/s engine": fmt(et["decode_tokens_per_s"]),
        "decode tok/s tf": fmt(tt["decode_tokens_per_s"] if tt else None), "decode ratio": ratio("decode_tokens_per_s"),
        "read GB/s": fmt(r["bandwidth_gb_per_s"], 1), "bound tok/s": fmt(bound),
        "engine % of bound": fmt(100 * et["decode_tokens_per_s"] / bound if bound else None, 0),
        "tf % of bound": fmt(100 * tt["decode_tokens_per_s"] / bound if bound and tt else None, 0),
        "peak RSS GB (engine / tf)": f"{fmt(e['peak_rss_gb'])} / {fmt(t['peak_rss_gb'] if t else None)}",
        "same tokens": ("yes" if e["tokens"] == t["tokens"] else "no") if t else "-",
    }
    return [row[c].replace("|", "/") for c in TABLE_COLUMNS]


def write_table(args, results):
    """Writes (or updates) the markdown table of --write-table: this run's rows replace the file's rows of the
    same CPU, kernel level, checkpoint, dtype, weight mode and thread count; the file's other rows stay."""
    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    new = [table_row(args, r, date) for r in results]
    key_index = [TABLE_COLUMNS.index(c) for c in TABLE_KEY]
    keys = {tuple(row[i] for i in key_index) for row in new}
    kept = []
    if os.path.exists(args.write_table):
        with open(args.write_table, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.startswith("|")]
        if lines and [c.strip() for c in lines[0].strip("|").split("|")] == TABLE_COLUMNS:
            for line in lines[2:]:
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == len(TABLE_COLUMNS) and tuple(cells[i] for i in key_index) not in keys:
                    kept.append(cells)
    rows = sorted(kept + new, key=lambda c: (c[1], c[3], c[4], c[5], c[6], int(c[7]) if c[7].isdigit() else 0))
    prompt = (f"prompt `{args.prompt}`, {args.tokens} new tokens (greedy, `--ignore-eos` / `min_new_tokens`); "
              "medians of the measured runs; ratio = engine / transformers; bound = read bandwidth / bytes a "
              "decode step reads")
    text = ["<!-- Written by tools/bench/compare_transformers.py --write-table; do not edit by hand. -->", "",
            "`python3 tools/bench/compare_transformers.py`: " + prompt + ".", "",
            "| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    text += ["| " + " | ".join(cells) + " |" for cells in rows]
    os.makedirs(os.path.dirname(os.path.abspath(args.write_table)), exist_ok=True)
    with open(args.write_table, "w", encoding="utf-8") as f:
        f.write("\n".join(text) + "\n")
    log(f"wrote {len(new)} row(s) to {args.write_table} ({len(kept)} kept)")


def plan(args):
    """(family, resolution, dtype, threads, runs, with transformers) of every configuration to measure."""
    with_tf = not args.engine_only
    if not args.all:
        return [(args.family, args.resolution, args.dtype, args.threads, args.runs, with_tf)]
    steps = [
        ("pg1", 224, "bf16", args.threads, args.runs, with_tf),
        ("pg1", 448, "bf16", args.threads, args.runs, with_tf),
        # transformers' 4096-token prefill alone takes minutes on a small machine; the engine is measured once
        ("pg1", 896, "bf16", args.threads, 1, False),
        ("pg2", 224, "bf16", args.threads, args.runs, with_tf),
        ("pg1", 224, "f32", args.threads, args.runs, with_tf),
    ]
    if args.threads > 1:
        steps.append(("pg1", 224, "bf16", 1, args.runs, with_tf))
    return steps


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", help="where the full-size checkpoints are (default: the reference root's "
                    "/tmp, i.e. REFERENCE_ROOT/tmp)")
    ap.add_argument("--model", help="one checkpoint directory (or a file the engine loads) instead of "
                    "--family/--resolution/--dtype")
    ap.add_argument("--image", help="image (default: image.png next to the checkpoint)")
    ap.add_argument("--prompt", default="caption en")
    ap.add_argument("--family", choices=("pg1", "pg2"), default="pg1")
    ap.add_argument("--resolution", type=int, choices=(224, 448, 896), default=224)
    ap.add_argument("--dtype", choices=("bf16", "f32"), default="bf16")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="engine and torch threads (default: all)")
    ap.add_argument("--runs", type=int, default=3, help="measured runs per side (default 3)")
    ap.add_argument("--tokens", type=int, default=16, help="new tokens per run (default 16)")
    ap.add_argument("--engine-only", action="store_true", help="do not run transformers")
    ap.add_argument("--all", action="store_true",
                    help="every checkpoint (224/448/896, PaliGemma 2, float32) and 1 thread vs --threads")
    ap.add_argument("--lazy-load", action="store_true", help="pass --lazy-load to the engine (no pre-faulting)")
    ap.add_argument("--no-mmap", action="store_true",
                    help="pass --no-mmap to the engine (weights copied into newly allocated memory)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="build directory with paligemma and "
                    "pg_memory_bandwidth (default: build)")
    ap.add_argument("--reference-root", default=DEFAULT_REFERENCE_ROOT,
                    help="the reference root (default: $PG_REFERENCE_ROOT, else /var/lib/paligemma-reference)")
    ap.add_argument("--reference-script", default=REFERENCE_SCRIPT,
                    help="the script that runs commands in it (default: tools/reference/reference-root.sh)")
    ap.add_argument("--json", metavar="FILE", help="also write every measurement to FILE")
    ap.add_argument("--write-table", metavar="FILE",
                    help="also write the summary as a markdown table with date, CPU and kernel level to FILE "
                    "(e.g. docs/tables/compare_transformers.md), keeping FILE's rows of other configurations")
    args = ap.parse_args()
    if args.runs < 1 or args.tokens < 2 or args.threads < 1:
        ap.error("--runs >= 1, --tokens >= 2 and --threads >= 1 are needed")
    if args.model and args.all:
        ap.error("--model measures one checkpoint; --all picks them from --checkpoints")
    if args.lazy_load and args.no_mmap:
        ap.error("--lazy-load and --no-mmap exclude each other")
    args.engine_flag = ["--lazy-load"] if args.lazy_load else ["--no-mmap"] if args.no_mmap else []
    if args.checkpoints is None:
        args.checkpoints = os.path.join(args.reference_root, "tmp")
    for tool in ("paligemma", "pg_memory_bandwidth"):
        if not os.access(os.path.join(args.build, tool), os.X_OK):
            ap.error(f"{os.path.join(args.build, tool)} is missing: build it (cmake --build {args.build} "
                     "--target paligemma pg_memory_bandwidth) or pass --build")
    return args


def main():
    args = parse_args()
    started = time.time()
    print(f"# Engine vs transformers, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_name()}, "
          f"{os.cpu_count()} CPUs, load average {load_average()}")
    results, bandwidths = [], {}
    for family, res, dtype, threads, runs, with_tf in plan(args):
        if args.model:
            model = os.path.abspath(args.model)
            label = os.path.basename(model.rstrip("/"))
        else:
            name, options = CHECKPOINTS[(family, res, dtype)]
            model = os.path.join(args.checkpoints, name)
            label = f"{TITLES[family]}-{res} {dtype}"
            if not os.path.isdir(model):
                print(f"\n## {label}: skipped, {model} does not exist; make it with\n  "
                      + " ".join(reference_command(args)) + " python3 tools/reference/make_fixtures.py "
                      f"--full-size /tmp/{name}{options}")
                continue
        image = args.image or os.path.join(model if os.path.isdir(model) else os.path.dirname(model), "image.png")
        try:
            r = measure(args, label, model, image, threads, runs, with_tf, bandwidths)
        except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as e:
            print(f"\n## {label}: failed: {e}")
            continue
        r["dtype"] = model_dtype(model) if args.model else dtype
        results.append(r)
        print_configuration(r)
        sys.stdout.flush()
    if results:
        print_summary(results)
    print(f"\ntotal benchmark time {time.time() - started:.0f} s; load average now {load_average()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"cpu": cpu_name(), "bandwidths": bandwidths, "results": results}, f, indent=1)
    if args.write_table and results:
        write_table(args, results)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
