#!/usr/bin/env bash
# Command-line contract of `paligemma generate`: output formats, exit codes and one-line errors.
# usage: cli_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
source "$(dirname "$0")/harness.sh"

# Runs the binary; sets rc, out, err.
run() {
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  out=$(cat "$TMP/out")
  err=$(cat "$TMP/err")
}

one_line_error() {  # expects non-zero rc, exactly one stderr line containing $1
  [ "$rc" -ne 0 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "$1" "$TMP/err"
}

CASE=$(ls -d "$FIX"/cases/*/ | head -1)
MODEL="$FIX/models/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$CASE/case.json")"
IMAGE="$CASE/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"][0])' "$CASE/case.json")"

run --help
check "help exits 0" [ "$rc" -eq 0 ]

run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --bogus
check "unknown flag: one line" one_line_error "unknown option --bogus"
check "unknown flag: usage exit code" [ "$rc" -eq 2 ]

run generate --model "$MODEL" --image "$IMAGE"
check "missing prompt" one_line_error "--prompt"

run generate --model "$MODEL" --prompt "caption en"
check "missing image" one_line_error "--image"

run generate --model "$MODEL" --image "$IMAGE" --prompt "x" --max-tokens zero
check "bad number" one_line_error "--max-tokens"

run generate --model "$MODEL" --image "$TMP/nope.png" --prompt "caption en"
check "unreadable image names the file" one_line_error "nope.png"

: >"$TMP/empty.jpg"
run generate --model "$MODEL" --image "$TMP/empty.jpg" --prompt "caption en"
check "empty image" one_line_error "empty.jpg"

head -c 100 "$IMAGE" >"$TMP/cut.png"
run generate --model "$MODEL" --image "$TMP/cut.png" --prompt "caption en"
check "truncated image" one_line_error "cut.png"

run generate --model "$TMP/no-model" --image "$IMAGE" --prompt "caption en"
check "missing model dir" one_line_error "no-model"

cp -r "$MODEL" "$TMP/broken"
for f in "$TMP"/broken/*.safetensors; do truncate -s -1000 "$f"; done
run generate --model "$TMP/broken" --image "$IMAGE" --prompt "caption en"
check "truncated weights" one_line_error "truncated"

cp -r "$MODEL" "$TMP/noconf" && rm "$TMP/noconf/config.json"
run generate --model "$TMP/noconf" --image "$IMAGE" --prompt "caption en"
check "missing config" one_line_error "config.json"

# More new tokens than the context holds stop where it ends, with finish_reason "length": a copy of the model
# whose max_position_embeddings leaves room for 3 tokens after the prompt.
run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --max-tokens 1 --json
prompt_len=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["prompt_tokens"]))' <"$TMP/out")
cp -r "$MODEL" "$TMP/short"
python3 - "$TMP/short/config.json" "$prompt_len" <<'PY'
import json, sys
path, prompt_len = sys.argv[1], int(sys.argv[2])
config = json.load(open(path))
config["text_config"]["max_position_embeddings"] = prompt_len + 3
json.dump(config, open(path, "w"))
PY
run generate --model "$TMP/short" --image "$IMAGE" --prompt "caption en" --max-tokens 100000 --ignore-eos --json
check "--max-tokens beyond the context: stops at it with finish_reason length" python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(not (r["finish_reason"] == "length" and len(r["tokens"]) == 3))' "$TMP/out"
run generate --model "$TMP/short" --image "$IMAGE" --prompt "caption en" --max-tokens 3 --ignore-eos --json
check "--max-tokens that fits exactly: finish_reason max_tokens" grep -q '"finish_reason":"max_tokens"' "$TMP/out"
run generate --model "$TMP/short" --image "$IMAGE" --prompt "caption en and a longer prompt" --max-tokens 1
check "a prompt that fills the context is an error" one_line_error "positions"

run generate --model "$MODEL" --image "$IMAGE" --prompt "<image> caption en"
check "literal <image> in the prompt" one_line_error "<image>"

run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --lazy-load --no-mmap
check "--lazy-load with --no-mmap" one_line_error "--no-mmap"
run generate --model "$TMP/broken" --image "$IMAGE" --prompt "caption en" --no-mmap
check "truncated weights, copied" one_line_error "truncated"

# A good run: plain text, then JSON whose ids match the reference, then the logits file.
run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --max-tokens 5
check "text run exits 0" [ "$rc" -eq 0 ]
check "text run prints one line" [ "$(wc -l <"$TMP/out")" -eq 1 ]

ARGS=(generate --model "$MODEL" --json --dump-logits "$TMP/logits.npy")
for img in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["images"]))' "$CASE/case.json"); do
  ARGS+=(--image "$CASE/$img")
done
PROMPT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"])' "$CASE/case.json")
MAXTOK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_new_tokens"])' "$CASE/case.json")
run "${ARGS[@]}" --prompt "$PROMPT" --max-tokens "$MAXTOK"
check "json run exits 0" [ "$rc" -eq 0 ]
python3 - "$TMP/out" "$CASE/case.json" "$TMP/logits.npy" <<'PY'
import json, struct, sys
out = json.loads(open(sys.argv[1]).read())
case = json.load(open(sys.argv[2]))
assert set(out) >= {"prompt_tokens", "tokens", "text", "timings"}, out.keys()
assert out["prompt_tokens"] == case["input_ids"], "prompt ids differ from the reference"
assert out["tokens"] == case["generated"], (out["tokens"], case["generated"])
steps = out["timings"]["decode_step_s"]  # one per token after the first, inside the decode time
assert len(steps) == len(out["tokens"]) - 1 and all(s > 0 for s in steps), steps
decode_s = (len(out["tokens"]) - 1) / out["timings"]["decode_tokens_per_s"]
assert sum(steps) <= decode_s * (1 + 1e-9), (sum(steps), decode_s)
raw = open(sys.argv[3], "rb").read()
assert raw[:6] == b"\x93NUMPY"
hlen = struct.unpack("<H", raw[8:10])[0]
header = raw[10:10 + hlen].decode()
shape = eval(header)["shape"]
assert header.find("'<f4'") > 0 and shape[0] == len(out["tokens"]), (header, len(out["tokens"]))
assert len(raw) - 10 - hlen == 4 * shape[0] * shape[1]
PY
check "json output and logits file match the reference" [ $? -eq 0 ]

# Weights copied into memory instead of mapped: the same tokens and bit-identical logits.
cp "$TMP/out" "$TMP/mapped.json" && cp "$TMP/logits.npy" "$TMP/mapped.npy"
run "${ARGS[@]}" --prompt "$PROMPT" --max-tokens "$MAXTOK" --no-mmap
same_as_mapped() {
  [ "$rc" -eq 0 ] && cmp -s "$TMP/logits.npy" "$TMP/mapped.npy" &&
    python3 -c 'import json,sys; a, b = (json.load(open(p)) for p in sys.argv[1:]); assert a["tokens"] == b["tokens"]' \
      "$TMP/out" "$TMP/mapped.json"
}
check "--no-mmap: same tokens and logits" same_as_mapped

finish
