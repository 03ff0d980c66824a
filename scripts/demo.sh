#!/usr/bin/env bash
# Installs dependencies, builds the engine and runs the embedded default model on a synthetic scene: every task's
# question (caption, count, colour, shape, detect, segment) with the model's answer next to the expected one, then
# an overlay picture with the boxes and masks of its segmentation answers.
# usage: bash scripts/demo.sh [SCENE_SET_DIR]
# The scene is the first of a set `tools/synthetic/scenes.py --out DIR` wrote; by default the demo draws its own
# with a fixed seed into build/demo-scene: 198, a red circle, a yellow triangle and a blue square on dark gray, one
# of the few early seeds whose three shapes differ in kind and colour (so all 18 kinds of question are asked) and
# stand well apart. The model answers all of them; on fresh scenes it is right on 95-96 % of captions (README).
# The overlay goes to build/demo-overlay.png (build/ is git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target paligemma
BIN=build/paligemma
# Debian's interpreter: install-deps.sh gives it numpy and Pillow (a python3 earlier on PATH may lack them).
PY=/usr/bin/python3
OVERLAY=build/demo-overlay.png
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SCENES=${1:-build/demo-scene}
if [ $# -eq 0 ]; then
  "$PY" tools/synthetic/scenes.py --out "$SCENES" --count 1 --seed 198
elif [ ! -f "$SCENES/scenes.jsonl" ]; then
  echo "demo: $SCENES holds no scenes.jsonl (write a set with tools/synthetic/scenes.py --out DIR)" >&2
  exit 1
fi

# The first scene: its picture and size, then one "task<TAB>prompt<TAB>expected answer" line per question.
QUESTIONS=$WORK/questions.tsv
"$PY" - "$SCENES/scenes.jsonl" >"$QUESTIONS" <<'PY'
import json, os, sys
scene = json.loads(open(sys.argv[1]).readline())
print(os.path.join(os.path.dirname(sys.argv[1]), scene["image"]), scene["width"], scene["height"], scene["background"], sep="\t")
for q in scene["questions"]:
    print(q["task"], q["prompt"], q["answer"], sep="\t")
PY
exec 3<"$QUESTIONS"
IFS=$'\t' read -r IMAGE WIDTH HEIGHT BACKGROUND <&3
echo
echo "Scene $IMAGE: ${WIDTH}x${HEIGHT}, $BACKGROUND background (model: the embedded default, models/synthetic; README \"The embedded model\")"
# Detection and segmentation answers count as right when they name the same objects in the same order with boxes
# of IoU >= 0.5 against the expected ones (the evaluation's criterion; loc tokens may differ by a few bins).
same_boxes() {
  "$PY" - "$1" "$2" <<'PY'
import re, sys
def objects(text):
    return [([int(v) for v in re.findall(r"<loc(\d{4})>", part)], re.sub(r"<(loc|seg)\d+>", "", part).strip())
            for part in text.split(" ; ") if part.strip()]
def iou(a, b):
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, y1 - y0) * max(0, x1 - x0)
    area = lambda r: max(0, r[2] - r[0]) * max(0, r[3] - r[1])
    union = area(a) + area(b) - inter
    return inter / union if union else 0.0
got, want = objects(sys.argv[1]), objects(sys.argv[2])
ok = len(got) == len(want) and all(len(g[0]) == 4 and g[1] == w[1] and iou(g[0], w[0]) >= 0.5
                                   for g, w in zip(got, want))
sys.exit(0 if ok else 1)
PY
}
right=0 total=0 segments=""
while IFS=$'\t' read -r task prompt expected <&3; do
  echo
  echo "\$ $BIN generate --image $IMAGE --prompt \"$prompt\""
  answer=$("$BIN" generate --image "$IMAGE" --prompt "$prompt" --max-tokens 64)
  echo "  $answer"
  total=$((total + 1))
  if [ "$answer" = "$expected" ]; then
    right=$((right + 1))
    echo "  (as expected)"
  elif [ "$task" = detect ] || [ "$task" = segment ] && same_boxes "$answer" "$expected"; then
    right=$((right + 1))
    echo "  (as expected up to a few pixels: every box overlaps the expected one with IoU >= 0.5, labels equal)"
  else
    echo "  (expected: ${expected:-an empty answer})"
  fi
  # Boxes in pixels (and mask areas) of detection / segmentation answers.
  if [ "$task" = detect ] || [ "$task" = segment ]; then
    [ -n "$answer" ] && "$BIN" parse --text "$answer" --width "$WIDTH" --height "$HEIGHT" 2>/dev/null | sed 's/^/  -> /'
  fi
  if [ "$task" = segment ]; then segments="${segments:+$segments ; }$answer"; fi
done
echo
echo "$right of $total answers as expected."
if [ -n "$segments" ]; then
  "$BIN" parse --text "$segments" --overlay-image "$IMAGE" --overlay "$OVERLAY" >/dev/null
  echo "Overlay of the segmentation answers (boxes, masks, labels): $OVERLAY"
fi
echo "Score the engine on fresh scenes: python3 tools/synthetic/evaluate.py --count 300 --seed 1"
