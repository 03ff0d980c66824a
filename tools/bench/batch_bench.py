#!/usr/bin/env python3
"""What `paligemma batch` gains from the image-feature cache, and what the OpenMP wait policy does on an idle
and on a busy machine.

usage: batch_bench.py [--binary build/paligemma] [--scenes 30] [--rounds 3] [--markdown FILE]

Draws --scenes synthetic scenes (tools/synthetic/scenes.py, seed 1; 13 questions each, as the demo evaluation
asks them) and runs the whole request file through `paligemma batch` on the embedded model, --rounds times per
setting, settings interleaved round by round. Prints the median wall time of each setting and its ratio to the
setting's baseline (the first row of its group), and checks that every setting gave the same answers. "busy"
rows run beside a busy loop pinned to one core (another process holding a core, as on a shared machine).
--markdown FILE also writes the table, with the CPU and the date, to FILE.
Needs numpy and Pillow (Debian: python3-numpy python3-pil) for the scenes.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "synthetic"))
import evaluate  # noqa: E402  (draw_scenes, load_scene_set, write_requests)

ap = argparse.ArgumentParser()
ap.add_argument("--binary", default=os.path.join(HERE, "..", "..", "build", "paligemma"))
ap.add_argument("--scenes", type=int, default=30)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--markdown")
args = ap.parse_args()

# (group, name, extra batch flags, environment changes, busy)
SETTINGS = [
    ("image cache", "no cache (--image-cache-mb 0)", ["--image-cache-mb", "0"], {}, False),
    ("image cache", "cache (default 256 MB)", [], {}, False),
    ("threads, idle", "2 threads, OMP_WAIT_POLICY=active", [], {"OMP_WAIT_POLICY": "active"}, False),
    ("threads, idle", "2 threads, passive wait (the default)", [], {}, False),
    ("threads, idle", "1 thread (--threads 1)", ["--threads", "1"], {}, False),
    ("threads, one core busy", "2 threads, OMP_WAIT_POLICY=active", [], {"OMP_WAIT_POLICY": "active"}, True),
    ("threads, one core busy", "2 threads, passive wait (the default)", [], {}, True),
    ("threads, one core busy", "1 thread (--threads 1)", ["--threads", "1"], {}, True),
]


def cpu_model():
    """The CPU's name, family/model and its widest vector instructions, from /proc/cpuinfo."""
    info = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags = info.get("flags", "").split()
    isa = next((name for flag, name in [("amx_tile", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                         ("avx2", "AVX2")] if flag in flags), "no AVX2")
    return "%s (family %s, model %s, %s)" % (info.get("model name", "unknown CPU"), info.get("cpu family", "?"),
                                             info.get("model", "?"), isa)


def answers(path):
    with open(path) as f:
        return sorted((r["id"], r.get("text"), json.dumps(r.get("objects"))) for r in map(json.loads, f))


def run(work, requests, flags, env_changes, busy, tag):
    out = os.path.join(work, "results-%s.jsonl" % tag)
    if os.path.exists(out):
        os.remove(out)
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.update(env_changes)
    burner = None
    if busy:
        burner = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
    try:
        t0 = time.monotonic()
        subprocess.run([args.binary, "batch", "--input", requests, "--output", out] + flags, env=env, check=True,
                       stderr=subprocess.DEVNULL)
        seconds = time.monotonic() - t0
    finally:
        if burner:
            burner.kill()
            burner.wait()
    return seconds, answers(out)


with tempfile.TemporaryDirectory() as work:
    scene_dir = os.path.join(work, "scenes")
    evaluate.draw_scenes(scene_dir, args.scenes, 1, None)
    scenes = evaluate.load_scene_set(scene_dir)
    requests = os.path.join(work, "requests.jsonl")
    n_requests = len(evaluate.write_requests(scenes, scene_dir, requests, 64))
    times = {i: [] for i in range(len(SETTINGS))}
    reference = None
    for r in range(args.rounds):
        for i, (group, name, flags, env_changes, busy) in enumerate(SETTINGS):
            seconds, got = run(work, requests, flags, env_changes, busy, str(i))
            times[i].append(seconds)
            reference = reference or got
            if got != reference:
                sys.exit("batch_bench.py: %s gave other answers than %s" % (name, SETTINGS[0][1]))
            print("round %d: %-24s %-36s %.2f s" % (r + 1, group, name, seconds), file=sys.stderr)

lines = ["`paligemma batch`, embedded model, %d requests (%d scenes, about 13 questions each), medians of %d rounds; "
         "%s, %d cores; %s." % (n_requests, args.scenes, args.rounds, cpu_model(), os.cpu_count(),
                                datetime.date.today().isoformat()),
         "", "| setting | | wall time | ratio |", "|---|---|---|---|"]
baseline = {}
for i, (group, name, _, _, _) in enumerate(SETTINGS):
    median = statistics.median(times[i])
    baseline.setdefault(group, median)
    lines.append("| %s | %s | %.2f s | %.2f |" % (group, name, median, median / baseline[group]))
lines.append("")
lines.append("Every setting gave the same answers.")
table = "\n".join(lines) + "\n"
print(table)
if args.markdown:
    with open(args.markdown, "w") as f:
        f.write(table)
