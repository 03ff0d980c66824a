#!/usr/bin/env bash
# Command-line contract of the task features: `paligemma parse` (JSON shape, masks, overlay and mask PNGs,
# usage errors) and generate's --task / --vae / --overlay flags.
# usage: tasks_cli_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
VAE="$FIX/vae/vae_small.npz"
CASE="$FIX/cases/pg2_loc_detect"
MODEL="$FIX/models/pg2_f32"
IMAGE="$CASE/gray.png"  # 64x48
source "$(dirname "$0")/harness.sh"

run() {  # sets rc; stdout in $TMP/out, stderr in $TMP/err
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

usage_error() {  # exit code 2 and exactly one stderr line containing $1
  [ "$rc" -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "$1" "$TMP/err"
}

json_check() {  # json_check PYTHON_EXPRESSION_OVER_d [FILE]: the file holds one JSON object for which it is true
  python3 - "$1" "${2:-$TMP/out}" <<'PY'
import json, sys
text = open(sys.argv[2]).read()
assert text.count("\n") == 1, "expected exactly one line"
d = json.loads(text)
assert eval("(" + sys.argv[1] + ")"), (sys.argv[1], d)
PY
}

png_size() {  # prints "WIDTH HEIGHT" of a PNG file, or fails when it is not one
  python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
pos, chunks = 8, []
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0], "bad CRC"
    chunks.append(kind)
    pos += 12 + length
assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
print(*struct.unpack(">II", data[16:24]))
PY
}

SEG=$(python3 -c "print(''.join('<seg%03d>' % c for c in [5, 17, 100, 3, 44, 90, 12, 0, 127, 64, 33, 21, 8, 77, 101, 2]))")

# Detection: two objects, a label with spaces and a non-ASCII one, a truncated third object kept as text.
run parse --text "<loc0100><loc0200><loc0300><loc0400> big cat ; <loc0512><loc0000><loc1023><loc0512> 猫 ; <loc0001>" \
    --width 640 --height 480 --json
check "parse detection exits 0" [ "$rc" -eq 0 ]
check "parse detection JSON" json_check 'set(d) == {"objects", "text"} and len(d["objects"]) == 2
  and d["objects"][0]["label"] == "big cat" and d["objects"][0]["box"] == [125, 47, 250, 141]
  and d["objects"][1]["label"] == "猫" and d["objects"][1]["box"] == [0, 240, 320, 480]
  and d["objects"][0]["box_normalized"] == [200 / 1024, 100 / 1024, 400 / 1024, 300 / 1024]
  and all("mask" not in o for o in d["objects"]) and d["text"] == "<loc0001>"'

run parse --text "no boxes here" --width 10 --height 10 --json
check "parse plain text" json_check 'd == {"objects": [], "text": "no boxes here"}'

# Segmentation with the decoder: a COCO RLE mask over the whole image.
run parse --text "<loc0100><loc0080><loc0950><loc0900>$SEG cat" --width 96 --height 80 --vae "$VAE" --json \
    --mask-png "$TMP/mask"
check "parse segmentation exits 0" [ "$rc" -eq 0 ]
check "parse segmentation JSON" json_check 'len(d["objects"]) == 1 and d["objects"][0]["label"] == "cat"
  and d["objects"][0]["mask"]["size"] == [80, 96] and sum(d["objects"][0]["mask"]["counts"]) == 80 * 96
  and all(c >= 0 for c in d["objects"][0]["mask"]["counts"]) and all(c > 0 for c in d["objects"][0]["mask"]["counts"][1:])
  and len(d["objects"][0]["mask"]["counts"]) > 2 and len(d["objects"][0]["seg_codes"]) == 16 and d["text"] == ""'
check "mask PNG has the image size" [ "$(png_size "$TMP/mask0.png")" = "96 80" ]

# (--model: the test model has no vae.npz, unlike the embedded default whose vae.npz parse would use.)
run parse --text "<loc0100><loc0080><loc0950><loc0900>$SEG cat" --width 96 --height 80 --model "$MODEL" --json
check "segmentation without --vae: boxes and a note" json_check '"mask" not in d["objects"][0]
  and d["objects"][0]["box"] == [8, 8, 84, 74] and "--vae" in d["note"]'

# Overlay: a valid PNG of the input image's size.
run parse --text "<loc0100><loc0080><loc0950><loc0900>$SEG cat ; <loc0000><loc0000><loc0500><loc0500> dog" \
    --overlay-image "$IMAGE" --overlay "$TMP/overlay.png" --vae "$VAE" --json
check "overlay run exits 0" [ "$rc" -eq 0 ]
check "overlay is a PNG of the image's size" [ "$(png_size "$TMP/overlay.png")" = "64 48" ]
check "overlay run JSON uses the image's size" json_check 'd["objects"][0]["mask"]["size"] == [48, 64]'

# Usage errors (exit 2, one line) and bad files (exit 1, one line naming the file).
run parse --width 10 --height 10
check "parse without --text" usage_error "--text"
run parse --text "x"
check "parse without a size" usage_error "--width"
run parse --text "x" --width 0 --height 5
check "parse with a zero width" usage_error "--width"
run parse --text "x" --width 5 --height 5 --overlay "$TMP/o.png"
check "--overlay without --overlay-image" usage_error "--overlay-image"
run parse --text "x" --width 5 --height 5 --overlay-image "$IMAGE" --overlay "$TMP/o.png"
check "size differs from the overlay image" usage_error "differ"
run parse --text "x" --width 5 --height 5 --model "$MODEL" --mask-png "$TMP/m"
check "--mask-png without --vae" usage_error "--vae"

# Without --vae, the model directory's vae.npz decodes the masks (the embedded model ships one).
mkdir "$TMP/model_with_vae"
ln -s "$(cd "$MODEL" && pwd)"/* "$TMP/model_with_vae/"
cp "$VAE" "$TMP/model_with_vae/vae.npz"
run parse --text "<loc0100><loc0080><loc0950><loc0900>$SEG cat" --width 96 --height 80 --vae "$VAE" --json
cp "$TMP/out" "$TMP/with_flag.json"
run parse --text "<loc0100><loc0080><loc0950><loc0900>$SEG cat" --width 96 --height 80 --model "$TMP/model_with_vae" --json
check "parse: the model's vae.npz gives the --vae masks" cmp -s "$TMP/out" "$TMP/with_flag.json"
cp "$FIX/vae/stored.npz" "$TMP/model_with_vae/vae.npz"
run generate --model "$TMP/model_with_vae" --image "$IMAGE" --task caption --max-tokens 1
check "generate loads the model's vae.npz" [ "$rc" -eq 1 ] && check "and names its missing array" grep -q "_vq_vae._embedding" "$TMP/err"
run generate --model "$TMP/model_with_vae" --image "$IMAGE" --task caption --max-tokens 1 --vae "$VAE"
check "--vae overrides the model's vae.npz" [ "$rc" -eq 0 ]
run parse --text "x" --width 5 --height 5 --vae "$TMP/none.npz"
check "missing vae file" [ "$rc" -eq 1 ] && check "missing vae file: one line naming it" grep -q "none.npz" "$TMP/err"
run parse --text "x" --width 5 --height 5 --vae "$FIX/vae/stored.npz"
check "vae file without decoder arrays" [ "$rc" -eq 1 ] && check "names the missing array" grep -q "_vq_vae._embedding" "$TMP/err"

# generate: the task flags build the documented prompt (same ids as --prompt), are exclusive with --prompt.
run generate --model "$MODEL" --image "$IMAGE" --prompt "detect cat ; dog" --max-tokens 1 --json
cp "$TMP/out" "$TMP/by_prompt.json"
run generate --model "$MODEL" --image "$IMAGE" --task detect --objects " cat;dog " --max-tokens 1 --json
check "--task detect gives the prompt's ids" python3 -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert a["prompt_tokens"] == b["prompt_tokens"]' "$TMP/by_prompt.json" "$TMP/out"
run generate --model "$MODEL" --image "$IMAGE" --task caption --prompt "caption en"
check "--task and --prompt together" usage_error "exactly one"
run generate --model "$MODEL" --image "$IMAGE" --task detect
check "--task detect without --objects" usage_error "--objects"
run generate --model "$MODEL" --image "$IMAGE" --task answer --lang de
check "--task answer without --question" usage_error "--question"
run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --lang de
check "--lang without --task" usage_error "--task"
run generate --model "$MODEL" --image "$IMAGE" --task caption --vae "$TMP/none.npz"
check "generate: bad --vae fails before the model runs" [ "$rc" -eq 1 ]

# generate with loc tokens in the output (the reference case's greedy text starts with three locs).
PROMPT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"])' "$CASE/case.json")
run generate --model "$MODEL" --image "$IMAGE" --prompt "$PROMPT" --max-tokens 12 --json --overlay "$TMP/gen.png" \
    --vae "$VAE"
check "generate with objects exits 0" [ "$rc" -eq 0 ]
check "generate JSON has objects" json_check '"<loc" in d["text"] and isinstance(d["objects"], list) and len(d["objects"]) >= 1
  and all({"label", "box", "box_normalized", "valid"} <= set(o) for o in d["objects"])'
check "generate overlay is a PNG of the image's size" [ "$(png_size "$TMP/gen.png")" = "64 48" ]
run generate --model "$MODEL" --image "$IMAGE" --task caption --max-tokens 2 --json
check "no objects key without loc tokens" json_check '"objects" not in d or "<loc" in d["text"]'

finish
