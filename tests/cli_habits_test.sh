#!/usr/bin/env bash
# Habits people bring from llama.cpp and ollama: `paligemma COMMAND --help` (each command's usage, which
# must name every flag the command accepts: the program checks that when asked for help), --version, the
# short flags -m -p -n -t, the closest flag suggested for a typo, and quantize defaulting to the embedded
# model and carrying its vae.npz so that the quantized file still segments.
# usage: cli_habits_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
source "$(dirname "$0")/harness.sh"

run() {
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

for cmd in generate batch serve parse quantize; do
  for flag in --help -h; do
    run "$cmd" "$flag"
    check "$cmd $flag: rc 0, usage on stdout, nothing on stderr (rc $rc: $(head -c 200 "$TMP/err"))" \
      test "$rc" -eq 0 -a ! -s "$TMP/err"
    check "$cmd $flag: its own usage" grep -q "^usage: paligemma $cmd " "$TMP/out"
  done
done
run generate --help
check "generate --help lists the short flags" grep -q -- "-m, --model DIR" "$TMP/out"
run serve --help
check "serve --help names --quiet and --image-cache-mb" grep -q -- "--quiet" "$TMP/out"
run --help
check "--help: rc 0 and every command" test "$rc" -eq 0 -a "$(grep -cE '^usage: paligemma (generate|batch|serve|parse|quantize) ' "$TMP/out")" -eq 5

run --version
check "--version: rc 0, version line" grep -qE '^paligemma [0-9]+\.[0-9]+\.[0-9]+$' "$TMP/out"
check "--version: build line" grep -qE '^build: [A-Za-z]+, ' "$TMP/out"
PG_ISA=scalar "$BIN" --version >"$TMP/out"
check "--version: the kernel level in use (PG_ISA=scalar)" grep -q '^kernels: scalar ' "$TMP/out"
check "--version: OpenMP threads wait passively by default" grep -q 'OpenMP wait policy PASSIVE$' "$TMP/out"
OMP_WAIT_POLICY=active "$BIN" --version >"$TMP/out"
check "--version: a wait policy the user set is kept" grep -q 'OpenMP wait policy active$' "$TMP/out"

MODEL="$FIX/models/pg2_f32"
IMAGE="$FIX/decoding/shapes_a.png"
run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --max-tokens 4 --threads 1 --json
long=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$TMP/out")
run generate -m "$MODEL" --image "$IMAGE" -p "caption en" -n 4 -t 1 --json
short=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$TMP/out")
check "-m -p -n -t mean --model --prompt --max-tokens --threads ($short vs $long)" test -n "$long" -a "$short" = "$long"
run parse -p "caption en"
check "a short flag the command lacks is unknown" grep -q "unknown option -p" "$TMP/err"

run generate --image "$IMAGE" --prompt "caption en" --max-token 4
check "typo: the closest flag suggested, exit 2" \
  test "$rc" -eq 2 -a "$(grep -c 'unknown option --max-token (did you mean --max-tokens?)' "$TMP/err")" -eq 1
run batch --inputt x.jsonl
check "typo in batch: --input suggested" grep -q "(did you mean --input?)" "$TMP/err"
run generate --image "$IMAGE" --prompt "caption en" --zzzzzzzzzz
check "no suggestion for a flag like no other" grep -qx "paligemma: unknown option --zzzzzzzzzz (see paligemma generate --help)" "$TMP/err"

# quantize without --model takes the embedded model, and carries its vae.npz: the GGUF segments alone.
(cd "$TMP" && "$BIN" quantize --type q8_0 --output embedded.gguf) 2>"$TMP/err"
check "quantize defaults to the embedded model" test -s "$TMP/embedded.gguf"
check "quantize says the vae.npz is carried" grep -q "vae.npz is carried" "$TMP/err"
SCENE="$FIX/images/png/rgb_300x201.png"
segment_masks() {  # MODEL: how many objects of a segment answer carry a mask
  "$BIN" generate --model "$1" --image "$SCENE" --prompt "segment red square" --max-tokens 24 --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(sum("mask" in o for o in r.get("objects", [])), len(r.get("objects", [])))'
}
check "the embedded model's segment answer has a mask (fixture sanity)" test "$(segment_masks "$(dirname "$0")/../models/synthetic" | cut -d' ' -f1)" -ge 1
check "the quantized file segments without --vae" test "$(segment_masks "$TMP/embedded.gguf" | cut -d' ' -f1)" -ge 1
"$BIN" quantize --model "$MODEL" --type q8_0 --output "$TMP/novae.gguf" 2>"$TMP/err"
check "a model without vae.npz: said, and none carried" grep -q "has no vae.npz" "$TMP/err"
"$BIN" parse --model "$TMP/embedded.gguf" --width 300 --height 201 --json \
  --text "<loc0100><loc0100><loc0900><loc0900>$(for i in $(seq 10 25); do printf '<seg0%d>' "$i"; done) cat" >"$TMP/out"
check "parse --model FILE.gguf decodes masks with the carried vae.npz" grep -q '"mask"' "$TMP/out"

finish
