#!/usr/bin/env python3
"""Scores the C++ engine on fresh synthetic scenes: caption, counting, colour and shape questions,
detection and segmentation.

Draws N scenes with tools/synthetic/scenes.py (or takes a set it wrote before, --scenes), turns every question
into one `paligemma batch` request, runs the engine once over all of them and compares its answers with the
set's expected ones:
  caption, count, color, shape   exact match of the generated text (surrounding whitespace ignored)
  detect                         precision and recall at IoU >= 0.5 over all detect questions: within a question,
                                 predicted boxes are matched one-to-one to expected boxes, greedily by IoU;
                                 every predicted object counts, an invalid box (ymax <= ymin) matches nothing
  segment                        mean over segment questions of the IoU of the first predicted mask with the
                                 expected mask (image-sized); no mask, a wrong size or an error counts 0
Prints a table on stdout (progress on stderr) and exits 0 whatever the scores: they are a report, not a test.

  python3 tools/synthetic/evaluate.py --count 300 --seed 1 [--binary build/paligemma] [--model DIR]
      [--vae FILE.npz] [--threads N] [--keep DIR] [--report FILE.json]
  python3 tools/synthetic/evaluate.py --scenes DIR ...          # a set scenes.py (or another tool) wrote

Plain Python 3; scenes.py needs numpy and Pillow (Debian: python3-numpy, python3-pil).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

IOU_THRESHOLD = 0.5
# Issue 6's targets on 300 fresh scenes.
TARGETS = {"caption": 0.95, "count": 0.95, "color": 0.95, "shape": 0.95,
           "detect_precision": 0.90, "detect_recall": 0.90, "segment_miou": 0.75}
TEXT_TASKS = ("caption", "count", "color", "shape")


# ---- scoring (tests/eval_test.py checks these on hand-worked cases) ----

def box_area(box):
    x0, y0, x1, y1 = box
    return max(0, x1 - x0) * max(0, y1 - y0)


def box_iou(a, b):
    """IoU of two end-exclusive pixel boxes [x0, y0, x1, y1]; an empty or inverted box has IoU 0."""
    inter = box_area([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(predicted, expected, threshold=IOU_THRESHOLD):
    """True positives of a one-to-one matching: pairs are taken in order of decreasing IoU (ties: earlier
    prediction, then earlier expected box first) while both are unmatched and the IoU is >= threshold."""
    pairs = sorted(((box_iou(p, e), i, j) for i, p in enumerate(predicted) for j, e in enumerate(expected)),
                   key=lambda t: (-t[0], t[1], t[2]))
    used_p, used_e = set(), set()
    for iou, i, j in pairs:
        if iou < threshold:
            break
        if i not in used_p and j not in used_e:
            used_p.add(i)
            used_e.add(j)
    return len(used_p)


def rle_runs(rle):
    """Foreground runs [start, stop) of a COCO uncompressed RLE ({"size": [H, W], "counts": [...]}, column-major,
    starting with a run of 0s), as indices into the column-major flattening. Raises ValueError when malformed."""
    if not isinstance(rle, dict) or set(rle) != {"size", "counts"}:
        raise ValueError("a mask must be {\"size\": [H, W], \"counts\": [...]}")
    size, counts = rle["size"], rle["counts"]
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)):
        raise ValueError("mask size must be [H, W], two whole numbers")
    if not isinstance(counts, list) or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                               for c in counts):
        raise ValueError("mask counts must be a list of non-negative whole numbers")
    if sum(counts) != size[0] * size[1]:
        raise ValueError("mask counts sum to %d, not H*W = %d" % (sum(counts), size[0] * size[1]))
    runs, pos = [], 0
    for k, c in enumerate(counts):
        if k % 2 == 1 and c > 0:
            runs.append((pos, pos + c))
        pos += c
    return runs


def mask_iou(a, b):
    """IoU of two RLE masks of the same size (two empty masks: 1). Raises ValueError on a size mismatch."""
    if a["size"] != b["size"]:
        raise ValueError("mask sizes differ: %s and %s" % (a["size"], b["size"]))
    ra, rb = rle_runs(a), rle_runs(b)
    area_a, area_b = sum(e - s for s, e in ra), sum(e - s for s, e in rb)
    inter, i, j = 0, 0, 0
    while i < len(ra) and j < len(rb):
        inter += max(0, min(ra[i][1], rb[j][1]) - max(ra[i][0], rb[j][0]))
        if ra[i][1] < rb[j][1]:
            i += 1
        else:
            j += 1
    union = area_a + area_b - inter
    return inter / union if union else 1.0


def score_question(question, result):
    """Per-question verdict: {"task", ...} with "correct" (text tasks), "true_positives"/"predicted"/"expected"
    (detect) or "iou" (segment). `result` is the batch result line (None when missing)."""
    task = question["task"]
    failed = result is None or "error" in result
    text = "" if failed else result["text"]
    objects = [] if failed else result.get("objects", [])
    verdict = {"task": task, "exact": not failed and text.strip() == question["answer"].strip()}
    if task in TEXT_TASKS:
        verdict["correct"] = verdict["exact"]
    elif task == "detect":
        expected = [o["box"] for o in question["objects"]]
        verdict.update(predicted=len(objects), expected=len(expected),
                       true_positives=match_boxes([o["box"] for o in objects], expected))
    else:
        masks = [o["mask"] for o in objects if "mask" in o]
        try:
            verdict["iou"] = mask_iou(masks[0], question["objects"][0]["mask"]) if masks else 0.0
        except ValueError:
            verdict["iou"] = 0.0
    return verdict


def summarize(verdicts):
    """Totals per task, and whether each target is met (None when a task had no questions)."""
    by_task = {t: [v for v in verdicts if v["task"] == t] for t in TEXT_TASKS + ("detect", "segment")}
    summary = {}
    for t in TEXT_TASKS:
        n = len(by_task[t])
        correct = sum(v["correct"] for v in by_task[t])
        summary[t] = {"questions": n, "correct": correct, "accuracy": correct / n if n else None}
    det = by_task["detect"]
    tp, pred, exp = (sum(v[k] for v in det) for k in ("true_positives", "predicted", "expected"))
    summary["detect"] = {"questions": len(det), "true_positives": tp, "predicted": pred, "expected": exp,
                         "precision": tp / pred if pred else None,
                         "recall": tp / exp if exp else None,
                         "exact_text": sum(v["exact"] for v in det) / len(det) if det else None}
    seg = by_task["segment"]
    summary["segment"] = {"questions": len(seg),
                          "mean_iou": sum(v["iou"] for v in seg) / len(seg) if seg else None,
                          "exact_text": sum(v["exact"] for v in seg) / len(seg) if seg else None}
    values = {t: summary[t]["accuracy"] for t in TEXT_TASKS}
    values.update(detect_precision=summary["detect"]["precision"], detect_recall=summary["detect"]["recall"],
                  segment_miou=summary["segment"]["mean_iou"])
    summary["targets"] = {k: {"target": TARGETS[k], "value": values[k],
                              "met": None if values[k] is None else values[k] >= TARGETS[k]} for k in TARGETS}
    return summary


# Buckets of a scene's closest horizontal spacing: the smallest distance between the box centres of two
# neighbouring shapes (left-to-right order), as a share of the canvas width. The caption lists shapes in that
# order, so a near tie asks the model to tell positions apart that are a pixel or two apart at its input.
GAP_BUCKETS = ((0.02, "< 2 %"), (0.05, "2-5 %"), (float("inf"), ">= 5 %"))


def closest_gap(scene):
    """Smallest |Δ centre x| / width between neighbouring shapes; None with fewer than two shapes."""
    centres = sorted((s["box"][0] + s["box"][2]) / 2 for s in scene["shapes"])
    if len(centres) < 2:
        return None
    return min(b - a for a, b in zip(centres, centres[1:])) / scene["width"]


def caption_breakdown(pairs):
    """Caption accuracy by number of shapes and by closest_gap bucket, from (verdict, scene) pairs of caption
    questions: {"by_shapes": {"1": {"questions", "correct"}, ...}, "by_gap": {"< 2 %": {...}, ...}}."""
    out = {"by_shapes": {}, "by_gap": {}}
    for verdict, scene in pairs:
        keys = [("by_shapes", str(len(scene["shapes"])))]
        gap = closest_gap(scene)
        if gap is not None:
            keys.append(("by_gap", next(name for limit, name in GAP_BUCKETS if gap < limit)))
        for table, key in keys:
            cell = out[table].setdefault(key, {"questions": 0, "correct": 0})
            cell["questions"] += 1
            cell["correct"] += int(verdict["correct"])
    return out


# ---- running the engine ----

def draw_scenes(out_dir, count, seed, vae):
    """scenes.py writes the set; `vae` (None: its default, the embedded model's) encodes the expected seg codes."""
    script = os.path.join(HERE, "scenes.py")
    if not os.path.exists(script):
        sys.exit("evaluate.py: %s is missing (it draws the scenes); pass --scenes DIR to score an existing set"
                 % script)
    print("drawing %d scenes (seed %d) into %s" % (count, seed, out_dir), file=sys.stderr)
    cmd = [sys.executable, script, "--out", out_dir, "--count", str(count), "--seed", str(seed)]
    rc = subprocess.run(cmd + (["--vae", vae] if vae else [])).returncode
    if rc != 0:
        sys.exit("evaluate.py: scenes.py failed (exit %d); it needs numpy and Pillow (Debian: python3-numpy "
                 "python3-pil)" % rc)


def check_question(question):
    """Raises ValueError unless the question has what scoring reads."""
    if not isinstance(question.get("prompt"), str) or not isinstance(question.get("answer"), str):
        raise ValueError("a question needs a \"prompt\" and an \"answer\" (strings)")
    task = question.get("task")
    if task not in TEXT_TASKS + ("detect", "segment"):
        raise ValueError("unknown task %r" % task)
    if task in ("detect", "segment"):
        objects = question.get("objects")
        if not isinstance(objects, list) or (task == "segment" and len(objects) != 1):
            raise ValueError("a %s question needs its expected \"objects\" (one for segment)" % task)
        for o in objects:
            if not (isinstance(o.get("box"), list) and len(o["box"]) == 4):
                raise ValueError("an expected object needs a \"box\" [x0, y0, x1, y1]")
            if task == "segment":
                rle_runs(o.get("mask"))


def engine_vae(args):
    """The mask decoder the engine will use when it is not the embedded default: --vae, else --model's vae.npz."""
    if args.vae or not args.model:
        return args.vae
    bundled = os.path.join(args.model, "vae.npz")
    return bundled if os.path.isfile(bundled) else None


def load_scene_set(set_dir):
    path = os.path.join(set_dir, "scenes.jsonl")
    try:
        with open(path) as f:
            scenes = [json.loads(line) for line in f if line.strip()]
        for n, scene in enumerate(scenes, 1):
            try:
                if not isinstance(scene.get("image"), str) or not isinstance(scene.get("questions"), list):
                    raise ValueError("a scene needs \"image\" and \"questions\"")
                for question in scene["questions"]:
                    check_question(question)
            except (ValueError, AttributeError) as e:
                raise ValueError("scene %d: %s" % (n, e)) from None
        return scenes
    except (OSError, ValueError) as e:
        sys.exit("evaluate.py: cannot read the scene set %s: %s" % (path, e))


def write_requests(scenes, set_dir, path, max_tokens):
    """One request per question, id "<scene>/<question>"; returns {id: (scene index, question)}."""
    questions = {}
    with open(path, "w") as f:
        for s, scene in enumerate(scenes):
            image = os.path.abspath(os.path.join(set_dir, scene["image"]))
            for q, question in enumerate(scene["questions"]):
                rid = "%d/%d" % (s, q)
                questions[rid] = (s, question)
                f.write(json.dumps({"id": rid, "image": image, "prompt": question["prompt"],
                                    "max_tokens": max_tokens}) + "\n")
    return questions


def run_engine(args, requests_path, results_path):
    if os.path.exists(results_path):
        os.remove(results_path)  # batch would resume from it, possibly another model's answers
    cmd = [args.binary, "batch", "--input", requests_path, "--output", results_path]
    for flag, value in (("--model", args.model), ("--vae", args.vae), ("--threads", args.threads)):
        if value is not None:
            cmd += [flag, str(value)]
    print("$ " + " ".join(cmd), file=sys.stderr)
    t0 = time.monotonic()
    rc = subprocess.run(cmd).returncode
    seconds = time.monotonic() - t0
    if rc != 0:
        sys.exit("evaluate.py: paligemma batch failed (exit %d)" % rc)
    with open(results_path) as f:
        return {r["id"]: r for r in map(json.loads, filter(str.strip, f))}, seconds


def percent(v):
    return "n/a" if v is None else "%.1f %%" % (100 * v)


def print_caption_breakdown(breakdown):
    def cells(table, order):
        return ", ".join("%s: %d/%d" % (k, table[k]["correct"], table[k]["questions"]) for k in order if k in table)
    print("caption by shapes      " + cells(breakdown["by_shapes"], ("1", "2", "3")))
    print("caption by closest gap " + cells(breakdown["by_gap"], [name for _, name in GAP_BUCKETS])
          + " (neighbouring centres, share of the width)")


def print_table(summary, n_scenes, seconds, n_requests, errors):
    s = summary
    rows = [("caption", "exact match", percent(s["caption"]["accuracy"]), "95 %", s["caption"]["questions"]),
            ("counting", "accuracy", percent(s["count"]["accuracy"]), "95 %", s["count"]["questions"]),
            ("colour QA", "accuracy", percent(s["color"]["accuracy"]), "95 %", s["color"]["questions"]),
            ("shape QA", "accuracy", percent(s["shape"]["accuracy"]), "95 %", s["shape"]["questions"]),
            ("detection", "precision @ IoU 0.5", percent(s["detect"]["precision"]), "90 %", s["detect"]["predicted"]),
            ("detection", "recall @ IoU 0.5", percent(s["detect"]["recall"]), "90 %", s["detect"]["expected"]),
            ("detection", "exact text", percent(s["detect"]["exact_text"]), "", s["detect"]["questions"]),
            ("segmentation", "mean IoU", "n/a" if s["segment"]["mean_iou"] is None
             else "%.3f" % s["segment"]["mean_iou"], "0.75", s["segment"]["questions"]),
            ("segmentation", "exact text", percent(s["segment"]["exact_text"]), "", s["segment"]["questions"])]
    print("%d scenes, %d requests, %.0f s in paligemma batch (%.3f s per request), %d request errors"
          % (n_scenes, n_requests, seconds, seconds / max(n_requests, 1), errors))
    print("%-13s %-20s %9s %7s %6s" % ("task", "measure", "value", "target", "n"))
    for row in rows:
        print("%-13s %-20s %9s %7s %6d" % row)
    unmet = [k for k, t in s["targets"].items() if not t["met"]]
    print("targets: all met" if not unmet else "targets not met: " + ", ".join(unmet))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--count", type=int, help="draw this many fresh scenes with scenes.py")
    source.add_argument("--scenes", help="score an existing scene set (a folder with scenes.jsonl)")
    ap.add_argument("--seed", type=int, help="seed of the drawn scenes (with --count)")
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "paligemma"), help="the paligemma program")
    ap.add_argument("--model", help="model directory (default: the engine's embedded model)")
    ap.add_argument("--vae", help="mask decoder .npz (default: the model directory's vae.npz)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--keep", help="folder for the drawn set, requests, results and per-question verdicts "
                                   "(default: a temporary folder, removed)")
    ap.add_argument("--report", help="write the summary as JSON here")
    args = ap.parse_args()
    if args.count is not None and (args.count < 1 or args.seed is None):
        ap.error("--count needs a positive number and --seed S")
    if args.scenes is not None and args.seed is not None:
        ap.error("--seed applies to --count (drawn scenes) only")
    if not os.access(args.binary, os.X_OK):
        ap.error("%s is not an executable; build it (cmake --build build --target paligemma) or pass --binary"
                 % args.binary)

    work = args.keep or tempfile.mkdtemp(prefix="pg-eval-")
    os.makedirs(work, exist_ok=True)
    try:
        set_dir = args.scenes
        if set_dir is None:
            set_dir = os.path.join(work, "scenes")
            draw_scenes(set_dir, args.count, args.seed, engine_vae(args))
        scenes = load_scene_set(set_dir)
        requests_path = os.path.join(work, "requests.jsonl")
        questions = write_requests(scenes, set_dir, requests_path, args.max_tokens)
        results, seconds = run_engine(args, requests_path, os.path.join(work, "results.jsonl"))
        verdicts = []
        with open(os.path.join(work, "verdicts.jsonl"), "w") as f:
            for rid, (s, question) in questions.items():
                result = results.get(rid)
                verdict = score_question(question, result)
                verdicts.append(verdict)
                f.write(json.dumps(dict(verdict, id=rid, image=scenes[s]["image"], prompt=question["prompt"],
                                        expected=question["answer"],
                                        got=None if result is None else result.get("text", result.get("error"))))
                        + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(verdicts)
    summary["caption"]["breakdown"] = caption_breakdown(
        [(v, scenes[s]) for v, (s, q) in zip(verdicts, questions.values()) if q["task"] == "caption"])
    errors = sum(1 for rid in questions if rid not in results or "error" in results[rid])
    print_table(summary, len(scenes), seconds, len(questions), errors)
    print_caption_breakdown(summary["caption"]["breakdown"])
    if args.report:
        report = {"scenes": len(scenes), "seed": args.seed, "scene_set": args.scenes, "model": args.model,
                  "vae": args.vae, "requests": len(questions), "request_errors": errors,
                  "batch_seconds": round(seconds, 3), "tasks": summary}
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
