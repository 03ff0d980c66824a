#!/usr/bin/env bash
# Files a user names that are not regular files, or are far too large, give one clear error at once: a FIFO
# as --image, --video, --vae, a weight shard, config.json or tokenizer.model; --output /dev/full; a request
# line of 100 MB; masks for a 100000x100000 image. Each command runs under `timeout`: before, each of
# these waited forever or for minutes.
# usage: input_files_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
source "$(dirname "$0")/harness.sh"

MODEL="$FIX/models/pg1_f32"
IMAGE="$FIX/decoding/shapes_a.png"
mkfifo "$TMP/fifo"

# expect_refusal NAME EXPECTED_TEXT COMMAND...: the command ends within 20 s, exits non-zero and says
# EXPECTED_TEXT on stderr.
expect_refusal() {
  local name=$1 expected=$2; shift 2
  timeout 20 "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
  local rc=$?
  check "$name: ends with an error (rc $rc, not 0 or 124)" test "$rc" -ne 0 -a "$rc" -ne 124
  check "$name: says '$expected'" grep -qF -- "$expected" "$TMP/err"
}

expect_refusal "FIFO --image" "fifo: not a regular file (a FIFO)" \
  "$BIN" generate --model "$MODEL" --image "$TMP/fifo" --prompt "caption en" --max-tokens 2
expect_refusal "FIFO --video" "fifo: not a regular file (a FIFO)" \
  "$BIN" generate --model "$MODEL" --video "$TMP/fifo" --prompt "caption en" --max-tokens 2
expect_refusal "FIFO --vae" "fifo: not a regular file (a FIFO)" \
  "$BIN" generate --model "$MODEL" --image "$IMAGE" --vae "$TMP/fifo" --prompt "segment cat" --max-tokens 2
expect_refusal "directory --image" "not a regular file (a directory)" \
  "$BIN" generate --model "$MODEL" --image "$TMP" --prompt "caption en" --max-tokens 2

# A model directory whose shard, config.json or tokenizer.model is a FIFO.
for part in model.safetensors config.json tokenizer.model; do
  rm -rf "$TMP/model"
  cp -r "$MODEL" "$TMP/model"
  rm "$TMP/model/$part"
  mkfifo "$TMP/model/$part"
  expect_refusal "FIFO $part" "$part: not a regular file (a FIFO)" \
    "$BIN" generate --model "$TMP/model" --image "$IMAGE" --prompt "caption en" --max-tokens 2
done

# batch: an output that is not a regular file is refused before any work (reading /dev/full to find the
# finished ids never ended).
printf '{"id": "a", "image": "%s", "prompt": "caption en", "max_tokens": 2}\n' "$IMAGE" >"$TMP/requests.jsonl"
expect_refusal "batch --output /dev/full" "/dev/full: not a regular file (a device)" \
  "$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output /dev/full
expect_refusal "batch --output FIFO" "fifo: not a regular file (a FIFO)" \
  "$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output "$TMP/fifo"
expect_refusal "batch --input FIFO" "fifo: not a regular file (a FIFO)" \
  "$BIN" batch --model "$MODEL" --input "$TMP/fifo" --output "$TMP/results.jsonl"

# batch: a 100 MB line becomes a line_too_long result naming its line; the lines around it are served.
python3 - "$TMP/requests.jsonl" "$IMAGE" <<'PY'
import json, sys
path, image = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    f.write(json.dumps({"id": "before", "image": image, "prompt": "caption en", "max_tokens": 2}) + "\n")
    f.write(json.dumps({"id": "huge", "image": image, "prompt": "a" * 100_000_000}) + "\n")
    f.write(json.dumps({"id": "after", "image": image, "prompt": "caption en", "max_tokens": 2}) + "\n")
PY
rm -f "$TMP/results.jsonl"
timeout 60 "$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output "$TMP/results.jsonl" 2>"$TMP/err"
check "batch with a 100 MB line: ends in time, rc 0" test $? -eq 0
python3 - "$TMP/results.jsonl" <<'PY' >"$TMP/verdict"
import json, sys
results = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
ok = (sorted(results) == ["#2", "after", "before"]
      and results["#2"]["error"]["code"] == "line_too_long"
      and "line 2 is 100000" in results["#2"]["error"]["message"]
      and "--max-line-bytes" in results["#2"]["error"]["message"]
      and "text" in results["before"] and "text" in results["after"])
print("ok" if ok else results)
PY
check "batch with a 100 MB line: line_too_long for line 2 only ($(head -c 300 "$TMP/verdict"))" grep -qx ok "$TMP/verdict"
# --max-line-bytes sets the limit: at 100 bytes every line of this input is over it.
printf '{"id": "a", "image": "%s", "prompt": "caption en", "max_tokens": 2}\n' "$IMAGE" >"$TMP/one.jsonl"
timeout 20 "$BIN" batch --model "$MODEL" --input "$TMP/one.jsonl" --output "$TMP/limited.jsonl" \
  --max-line-bytes 100 >/dev/null 2>&1
check "--max-line-bytes 100 refuses a longer line" grep -q '"id":"#1","error":{"code":"line_too_long"' "$TMP/limited.jsonl"

# parse: masks of an image far over the pixel limit are refused before any mask work (before, the process
# grew to 9.8 GB first); the address-space cap keeps a regression from taking the machine's memory (not
# under AddressSanitizer, whose shadow memory needs more address space than that).
SEGMENT="<loc0100><loc0100><loc0900><loc0900>$(for i in $(seq 10 25); do printf '<seg0%d>' "$i"; done) cat"
cap=4000000
# (Not `ldd | grep -q`: under pipefail, grep quitting early can fail the pipeline with ldd's SIGPIPE.)
case "$(ldd "$BIN")" in *libasan*) cap=unlimited ;; esac
(ulimit -v "$cap"; timeout 20 "$BIN" parse --text "$SEGMENT" --width 100000 --height 100000 --json) \
  >"$TMP/out" 2>"$TMP/err"
check "parse 100000x100000 with a mask: refused (rc $?)" test $? -eq 1
check "parse 100000x100000 with a mask: names the image pixel limit" \
  grep -qF "100000x100000 image (10000000000 pixels) are over the image pixel limit of 268435456" "$TMP/err"

finish
