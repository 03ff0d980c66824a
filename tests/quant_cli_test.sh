#!/usr/bin/env bash
# Command-line contract of `paligemma quantize` and of loading its single-file output with --model FILE:
# usage errors, one-line errors naming bad files, and a q8_0 fixture model giving the original's greedy
# tokens.
# usage: quant_cli_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
MODEL="$FIX/models/pg1_f16_sharded"
IMAGE="$FIX/images/png/rgb_300x201.png"
source "$(dirname "$0")/harness.sh"

run() {  # sets rc; stdout in $TMP/out, stderr in $TMP/err
  "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

one_line_error() {  # exit code $1 and exactly one stderr line containing $2
  [ "$rc" -eq "$1" ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "$2" "$TMP/err"
}

tokens_of() {  # the "tokens" array of generate --json output in $1
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tokens"])' "$1"
}

run quantize --model "$MODEL" --output "$TMP/m.gguf"
check "missing --type is a usage error" one_line_error 2 "--type"
run quantize --model "$MODEL" --type q3_k --output "$TMP/m.gguf"
check "unknown --type is a usage error" one_line_error 2 "q3_k"
run quantize --model "$TMP/nope" --type q8_0 --output "$TMP/m.gguf"
check "missing model directory is one line naming it" one_line_error 1 "$TMP/nope"
run quantize --model "$MODEL" --type q8_0 --output "$TMP/no/such/dir/m.gguf"
check "unwritable output is one line naming it" one_line_error 1 "$TMP/no/such/dir/m.gguf"

run quantize --model "$MODEL" --type q8_0 --output "$TMP/q8.gguf"
check "quantize q8_0 succeeds" [ "$rc" -eq 0 ]
check "quantize reports what it wrote" grep -q "tensors q8_0" "$TMP/err"
check "no partial file is left behind" [ ! -e "$TMP/q8.gguf.part" ]
run quantize --model "$MODEL" --type q4_0 --output "$TMP/q4.gguf"
check "quantize q4_0 succeeds" [ "$rc" -eq 0 ]
check "q4_0 is smaller than q8_0" [ "$(stat -c %s "$TMP/q4.gguf")" -lt "$(stat -c %s "$TMP/q8.gguf")" ]

run generate --model "$MODEL" --image "$IMAGE" --prompt "caption en" --max-tokens 8 --json
cp "$TMP/out" "$TMP/original.json"
run generate --model "$TMP/q8.gguf" --image "$IMAGE" --prompt "caption en" --max-tokens 8 --json
cp "$TMP/out" "$TMP/q8.json"
check "generate loads the q8_0 file" [ "$rc" -eq 0 ]
# docs/quantization.md: on this fixture q8_0 agrees with the original at every step (top-2 margins are
# far above its KL of ~1e-4).
check "q8_0 gives the original's greedy tokens" [ "$(tokens_of "$TMP/q8.json")" = "$(tokens_of "$TMP/original.json")" ]
run generate --model "$TMP/q4.gguf" --image "$IMAGE" --prompt "caption en" --max-tokens 4 --ignore-eos --json
check "generate loads the q4_0 file" [ "$rc" -eq 0 ]
check "q4_0 generates --max-tokens tokens" [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tokens"]))' "$TMP/out")" = 4 ]

head -c 1000 "$TMP/q8.gguf" >"$TMP/cut.gguf"
run generate --model "$TMP/cut.gguf" --image "$IMAGE" --prompt "caption en"
check "truncated file is one line naming it" one_line_error 1 "$TMP/cut.gguf"
printf 'not a model at all' >"$TMP/text.gguf"
run generate --model "$TMP/text.gguf" --image "$IMAGE" --prompt "caption en"
check "wrong magic is one line naming the file" one_line_error 1 "not a GGUF file"
cp "$TMP/q8.gguf" "$TMP/corrupt.gguf"
# An unknown ggml type in the embeddings' tensor description (after its name and dimensions).
python3 - "$TMP/corrupt.gguf" <<'PY'
import struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
name = b"language_model.model.embed_tokens.weight"
at = data.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
dims = struct.unpack_from("<I", data, at)[0]
struct.pack_into("<I", data, at + 4 + 8 * dims, 77)
open(path, "wb").write(data)
PY
run generate --model "$TMP/corrupt.gguf" --image "$IMAGE" --prompt "caption en"
check "unknown tensor type is one line naming it" one_line_error 1 "ggml type 77"
run quantize --model "$TMP/q8.gguf" --type q4_0 --output "$TMP/again.gguf"
check "quantizing a quantized file is refused" one_line_error 1 "not one"

finish
