#!/usr/bin/env python3
"""The synthetic-scene evaluator (tools/synthetic/evaluate.py): its scoring on hand-worked cases, the whole run
against a stand-in `paligemma` whose answers are known, and one run of the real engine over a two-scene set.
usage: eval_test.py PALIGEMMA_BINARY FIXTURES_DIR"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools", "synthetic"))
import evaluate  # noqa: E402

EVALUATE = os.path.join(REPO, "tools", "synthetic", "evaluate.py")
BIN, FIX = (sys.argv[1], sys.argv[2]) if len(sys.argv) > 2 else (None, None)

# 3 x 4 mask, and its COCO RLE worked out by hand: columns top to bottom are 001 111 100 001, so the
# column-major sequence 0011111 0000 1 has runs 2 zeros, 5 ones, 4 zeros, 1 one.
MASK_A = [[0, 1, 1, 0],
          [0, 1, 0, 0],
          [1, 1, 0, 1]]
RLE_A = {"size": [3, 4], "counts": [2, 5, 4, 1]}
# Columns 000 100 100 000: 3 zeros, 1 one, 2 zeros, 1 one, 5 zeros. Shares 2 pixels with MASK_A (area 6).
RLE_B = {"size": [3, 4], "counts": [3, 1, 2, 1, 5]}


def paint(rle):
    """The mask an RLE describes, pixel by pixel (flat index i is row i % H, column i // H)."""
    h, w = rle["size"]
    grid = [[0] * w for _ in range(h)]
    for start, stop in evaluate.rle_runs(rle):
        for i in range(start, stop):
            grid[i % h][i // h] = 1
    return grid


class BoxIoU(unittest.TestCase):
    def test_hand_worked(self):
        self.assertEqual(evaluate.box_iou([0, 0, 10, 10], [0, 0, 10, 10]), 1.0)
        self.assertAlmostEqual(evaluate.box_iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150)
        self.assertAlmostEqual(evaluate.box_iou([0, 0, 10, 10], [0, 0, 5, 5]), 25 / 100)
        self.assertAlmostEqual(evaluate.box_iou([2, 3, 6, 9], [4, 1, 8, 5]), 4 / (24 + 16 - 4))

    def test_end_exclusive_and_degenerate(self):
        self.assertEqual(evaluate.box_iou([0, 0, 10, 10], [10, 0, 20, 10]), 0.0)  # touching edges share no pixel
        self.assertEqual(evaluate.box_iou([10, 0, 5, 10], [0, 0, 20, 10]), 0.0)   # inverted (invalid) box
        self.assertEqual(evaluate.box_iou([3, 3, 3, 3], [3, 3, 3, 3]), 0.0)       # two empty boxes


class Matching(unittest.TestCase):
    def test_threshold_is_inclusive(self):
        self.assertEqual(evaluate.match_boxes([[0, 0, 5, 1]], [[0, 0, 10, 1]]), 1)  # IoU exactly 0.5
        self.assertEqual(evaluate.match_boxes([[0, 0, 4, 1]], [[0, 0, 10, 1]]), 0)  # IoU 0.4

    def test_duplicates_match_once(self):
        gt = [[0, 0, 10, 10]]
        self.assertEqual(evaluate.match_boxes([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 10, 10]], gt), 1)

    def test_misses_and_extras(self):
        self.assertEqual(evaluate.match_boxes([], [[0, 0, 10, 10]]), 0)
        self.assertEqual(evaluate.match_boxes([[0, 0, 10, 10]], []), 0)
        self.assertEqual(evaluate.match_boxes([[50, 50, 60, 60], [0, 0, 10, 10]],
                                              [[0, 0, 10, 10], [100, 0, 110, 10]]), 1)

    def test_greedy_by_iou(self):
        # A fits gt2 exactly (1.0) and gt1 at 8/12; B fits gt1 at 9/10 and gt2 at 7/12: A-gt2, then B-gt1.
        gt1, gt2, a, b = [0, 0, 10, 1], [2, 0, 12, 1], [2, 0, 12, 1], [0, 0, 9, 1]
        self.assertEqual(evaluate.match_boxes([a, b], [gt1, gt2]), 2)
        # The exact box (1.0) takes the expected one first; the 0.9 box listed before it is left unmatched.
        self.assertEqual(evaluate.match_boxes([[0, 0, 9, 1], [0, 0, 10, 1]], [[0, 0, 10, 1]]), 1)


class Rle(unittest.TestCase):
    def test_decode_known_masks(self):
        self.assertEqual(evaluate.rle_runs(RLE_A), [(2, 7), (11, 12)])
        self.assertEqual(paint(RLE_A), MASK_A)
        self.assertEqual(paint({"size": [2, 2], "counts": [0, 2, 2]}), [[1, 0], [1, 0]])  # starts with ones
        self.assertEqual(paint({"size": [2, 3], "counts": [6]}), [[0, 0, 0], [0, 0, 0]])
        self.assertEqual(evaluate.rle_runs({"size": [0, 5], "counts": []}), [])

    def test_malformed(self):
        for bad in ({"size": [3, 4], "counts": [2, 5, 4]},         # sums to 11, not 12
                    {"size": [3, 4], "counts": [2, -1, 11]},       # negative run
                    {"size": [3], "counts": [3]},
                    {"size": [3, 4], "counts": "2541"},            # compressed RLE strings are not produced
                    {"size": [3, 4]}, [2, 5, 4, 1]):
            with self.assertRaises(ValueError, msg=bad):
                evaluate.rle_runs(bad)

    def test_mask_iou(self):
        self.assertAlmostEqual(evaluate.mask_iou(RLE_A, RLE_B), 2 / 6)
        self.assertEqual(evaluate.mask_iou(RLE_A, RLE_A), 1.0)
        empty = {"size": [3, 4], "counts": [12]}
        self.assertEqual(evaluate.mask_iou(RLE_A, empty), 0.0)
        self.assertEqual(evaluate.mask_iou(empty, empty), 1.0)
        with self.assertRaises(ValueError):
            evaluate.mask_iou(RLE_A, {"size": [4, 3], "counts": [12]})


def question(task, prompt, answer, objects=None):
    q = {"task": task, "prompt": prompt, "answer": answer}
    if objects is not None:
        q["objects"] = objects
    return q


BOX1, BOX2 = [0, 0, 2, 2], [2, 0, 4, 3]
# A hand-made set of one 3 x 4 scene; the answers below are what the stand-in engine gives for each prompt.
QUESTIONS = [
    question("caption", "caption en", "a red circle and a blue square"),
    question("count", "answer en how many shapes are there?", "2"),
    question("color", "answer en what color is the circle?", "red"),
    question("shape", "answer en what shape is blue?", "square"),
    question("detect", "detect circle", "<loc0000><loc0000><loc0683><loc0512> circle",
             [{"label": "circle", "box": BOX1, "mask": RLE_B}]),
    question("detect", "detect triangle", "", []),
    question("detect", "detect red circle ; blue square", "x",
             [{"label": "red circle", "box": BOX1, "mask": RLE_B}, {"label": "blue square", "box": BOX2, "mask": RLE_A}]),
    question("segment", "segment red circle", "s", [{"label": "red circle", "box": BOX1, "mask": RLE_B}]),
    question("segment", "segment blue square", "s", [{"label": "blue square", "box": BOX2, "mask": RLE_A}]),
]
ANSWERS = {
    "caption en": {"text": " a red circle and a blue square "},          # whitespace around is ignored
    "answer en how many shapes are there?": {"text": "3"},              # wrong
    "answer en what color is the circle?": {"error": {"code": "generation_error", "message": "x"}},
    "answer en what shape is blue?": {"text": "square"},
    "detect circle": {"text": "<loc0000><loc0000><loc0683><loc0512> circle",
                      "objects": [{"label": "circle", "box": BOX1, "valid": True}]},
    "detect triangle": {"text": "<loc0000><loc0000><loc0001><loc0001> triangle",  # a false positive
                        "objects": [{"label": "triangle", "box": [0, 0, 1, 1], "valid": True}]},
    "detect red circle ; blue square": {"text": "t", "objects": [              # a duplicate and a miss
        {"label": "red circle", "box": BOX1, "valid": True}, {"label": "red circle", "box": BOX1, "valid": True}]},
    "segment red circle": {"text": "t", "objects": [{"label": "red circle", "box": BOX1, "valid": True, "mask": RLE_A}]},
    "segment blue square": {"text": "t", "objects": [{"label": "blue square", "box": BOX2, "valid": True}]},  # no mask
}


class Scoring(unittest.TestCase):
    def test_summary_of_hand_made_results(self):
        s = evaluate.summarize([evaluate.score_question(q, dict(ANSWERS[q["prompt"]])) for q in QUESTIONS])
        self.assertEqual((s["caption"]["correct"], s["count"]["correct"], s["color"]["correct"],
                          s["shape"]["correct"]), (1, 0, 0, 1))
        # Predictions: 1 + 1 + 2, of which 1 + 0 + 1 match; expected boxes 1 + 0 + 2.
        d = s["detect"]
        self.assertEqual((d["true_positives"], d["predicted"], d["expected"]), (2, 4, 3))
        self.assertAlmostEqual(d["precision"], 2 / 4)
        self.assertAlmostEqual(d["recall"], 2 / 3)
        self.assertAlmostEqual(d["exact_text"], 1 / 3)
        # IoU(MASK_A, MASK_B) = 1/3 for the first, no mask (0) for the second.
        self.assertAlmostEqual(s["segment"]["mean_iou"], (1 / 3 + 0) / 2)
        self.assertEqual(s["targets"]["shape"]["met"], True)
        self.assertEqual(s["targets"]["count"]["met"], False)

    def test_missing_result_scores_zero(self):
        self.assertFalse(evaluate.score_question(QUESTIONS[0], None)["correct"])
        self.assertEqual(evaluate.score_question(QUESTIONS[7], None)["iou"], 0.0)
        v = evaluate.score_question(QUESTIONS[4], None)
        self.assertEqual((v["true_positives"], v["predicted"], v["expected"]), (0, 0, 1))

    def test_bad_predicted_mask_scores_zero(self):
        wrong_size = {"text": "t", "objects": [{"box": BOX1, "mask": {"size": [4, 3], "counts": [12]}}]}
        self.assertEqual(evaluate.score_question(QUESTIONS[7], wrong_size)["iou"], 0.0)

    def test_caption_breakdown(self):
        def scene(width, *xs):  # boxes 10 px wide starting at each x
            return {"width": width, "shapes": [{"box": [x, 0, x + 10, 10]} for x in xs]}
        pairs = [({"correct": True}, scene(100, 0)),            # one shape: no gap
                 ({"correct": False}, scene(100, 0, 1, 50)),    # centres 5, 6, 55: gap 1/100
                 ({"correct": True}, scene(100, 30, 0)),        # centres 35, 5: gap 30/100, order irrelevant
                 ({"correct": True}, scene(200, 0, 6))]         # gap 6/200 = 3 %
        b = evaluate.caption_breakdown(pairs)
        self.assertEqual(b["by_shapes"], {"1": {"questions": 1, "correct": 1}, "2": {"questions": 2, "correct": 2},
                                          "3": {"questions": 1, "correct": 0}})
        self.assertEqual(b["by_gap"], {"< 2 %": {"questions": 1, "correct": 0},
                                       ">= 5 %": {"questions": 1, "correct": 1},
                                       "2-5 %": {"questions": 1, "correct": 1}})

    def test_empty_set(self):
        s = evaluate.summarize([])
        self.assertIsNone(s["caption"]["accuracy"])
        self.assertIsNone(s["detect"]["precision"])
        self.assertIsNone(s["targets"]["segment_miou"]["met"])


# Stand-in for `paligemma batch`: checks each request is what evaluate.py should send, answers from ANSWERS.
FAKE_ENGINE = r'''#!/usr/bin/env python3
import json, os, sys
answers = json.loads(%r)
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
assert sys.argv[1] == "batch" and set(args) == {"--input", "--output", "--model"}, sys.argv
assert not os.path.exists(args["--output"]), "evaluate.py must not resume from old results"
with open(args["--input"]) as f, open(args["--output"], "w") as out:
    for line in f:
        r = json.loads(line)
        assert set(r) == {"id", "image", "prompt", "max_tokens"} and os.path.isabs(r["image"]), r
        assert os.path.exists(r["image"]), r
        out.write(json.dumps(dict(answers[r["prompt"]], id=r["id"])) + "\n")
'''


def write_scene_set(folder, image_source, width, height, questions):
    os.makedirs(os.path.join(folder, "images"))
    shutil.copy(image_source, os.path.join(folder, "images", "000000.png"))
    scene = {"image": "images/000000.png", "width": width, "height": height, "background": "white",
             "shapes": [], "questions": questions}
    with open(os.path.join(folder, "scenes.jsonl"), "w") as f:
        f.write(json.dumps(scene) + "\n")


class WholeRun(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_with_a_stand_in_engine(self):
        fake = os.path.join(self.tmp, "fake-paligemma")
        with open(fake, "w") as f:
            f.write(FAKE_ENGINE % json.dumps(ANSWERS))
        os.chmod(fake, 0o755)
        scenes = os.path.join(self.tmp, "set")
        write_scene_set(scenes, EVALUATE, 4, 3, QUESTIONS)  # the stand-in never opens the image
        keep, report = os.path.join(self.tmp, "keep"), os.path.join(self.tmp, "report.json")
        os.makedirs(keep)
        with open(os.path.join(keep, "results.jsonl"), "w") as f:
            f.write('{"id": "0/0", "text": "stale"}\n')
        for _ in range(2):  # the second run finds the first run's results in --keep and must not reuse them
            r = subprocess.run([sys.executable, EVALUATE, "--scenes", scenes, "--binary", fake, "--model", "M",
                                "--keep", keep, "--report", report], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(report) as f:
            tasks = json.load(f)["tasks"]
        self.assertEqual((tasks["detect"]["true_positives"], tasks["detect"]["predicted"]), (2, 4))
        self.assertAlmostEqual(tasks["segment"]["mean_iou"], 1 / 6)
        self.assertEqual(tasks["caption"]["correct"], 1)
        self.assertIn("targets not met", r.stdout)
        with open(os.path.join(keep, "verdicts.jsonl")) as f:
            self.assertEqual(len(f.readlines()), len(QUESTIONS))

    def test_malformed_scene_set_is_one_line(self):
        scenes = os.path.join(self.tmp, "set")
        write_scene_set(scenes, EVALUATE, 4, 3, [question("segment", "segment red circle", "s", [])])
        r = subprocess.run([sys.executable, EVALUATE, "--scenes", scenes, "--binary", sys.executable],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("scene 1: a segment question needs its expected", r.stderr)

    @unittest.skipIf(BIN is None, "needs the paligemma binary and the fixtures folder as arguments")
    def test_real_engine_answers_every_question(self):
        # The tiny random test model answers noise, so only the run's bookkeeping is checked here.
        scenes = os.path.join(self.tmp, "set")
        write_scene_set(scenes, os.path.join(FIX, "images", "png", "rgb_300x201.png"), 300, 201, [
            question("caption", "caption en", "a red circle"),
            question("detect", "detect circle", "", []),
            question("segment", "segment red circle", "",
                     [{"label": "red circle", "box": [0, 0, 10, 10], "mask": {"size": [201, 300], "counts": [60300]}}])])
        report = os.path.join(self.tmp, "report.json")
        r = subprocess.run([sys.executable, EVALUATE, "--scenes", scenes, "--binary", BIN, "--max-tokens", "3",
                            "--model", os.path.join(FIX, "models", "pg2_f32"),
                            "--vae", os.path.join(FIX, "vae", "vae_small.npz"), "--report", report],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(report) as f:
            rep = json.load(f)
        self.assertEqual((rep["requests"], rep["request_errors"]), (3, 0))
        self.assertEqual(rep["tasks"]["segment"]["questions"], 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
