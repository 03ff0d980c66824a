#!/usr/bin/env bash
# `paligemma batch`: one result per request id, bad lines reported as results, resuming after an interruption
# (a run on a prefix of the input, a write cut off mid-line, a run killed with SIGKILL) gives exactly the results of
# one uninterrupted run.
# usage: batch_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -uo pipefail
BIN=$1
FIX=$2
source "$(dirname "$0")/harness.sh"

MODEL="$FIX/models/pg1_f32"
cp "$FIX/decoding/shapes_a.png" "$FIX/decoding/shapes_b.png" "$FIX/video/steps_h264.mp4" "$TMP/"
mkdir "$TMP/sub"
cp "$FIX/decoding/shapes_c.png" "$TMP/sub/"

# Relative paths are taken from the input file's folder. Lines 3 (bad JSON), 4 (missing image), 5 (max_tokens of
# the wrong type), 10 (unknown key), 9 (a repeated id) and 13 (no id) are bad; line 11 is blank.
cat >"$TMP/requests.jsonl" <<'EOF'
{"id": "a", "image": "shapes_a.png", "prompt": "caption en", "max_tokens": 6}
{"id": "b", "images": ["shapes_a.png", "sub/shapes_c.png"], "prompt": "answer en which one", "max_tokens": 5, "beams": 2}
{"id": "broken", "image": "shapes_a.png", "prompt": "caption en"
{"id": "c", "image": "missing.png", "prompt": "caption en"}
{"id": "d", "image": "shapes_a.png", "prompt": "caption en", "max_tokens": "ten"}
{"id": "e", "image": "shapes_b.png", "prompt": "caption en", "max_tokens": 6, "temperature": 0.8, "top_k": 20, "seed": 7}
{"id": 7, "video": "steps_h264.mp4", "frames": 2, "prompt": "caption en", "max_tokens": 4}
{"id": "f", "image": "sub/shapes_c.png", "task": "detect", "objects": "cat ; dog", "max_tokens": 6}
{"id": "a", "image": "shapes_b.png", "prompt": "caption en"}
{"id": "g", "image": "shapes_a.png", "prompt": "caption en", "colour": "red"}

{"id": "h", "image": "shapes_b.png", "prompt": "caption en", "max_tokens": 8, "stop": ["e", "a"]}
["not", "an", "object"]
{"id": "i", "image": "shapes_a.png", "prompt": "caption en", "max_tokens": 3, "beams": 3, "length_penalty": 0.5}
EOF
EXPECTED_IDS='"#13" "#3" "#9" "a" "b" "c" "d" "e" "f" "g" "h" "i" 7'

# "id: code" per line ("id: ok" for a result with text), sorted; exits non-zero if an id repeats.
summary() {
  python3 - "$1" <<'EOF'
import json, sys
seen, rows = set(), []
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = json.dumps(r["id"])
    assert key not in seen, f"id {key} twice"
    seen.add(key)
    rows.append(f'{key}: {r["error"]["code"] if "error" in r else "ok"}')
print("\n".join(sorted(rows)))
EOF
}
ids() { summary "$1" | sed 's/:.*//' | tr '\n' ' ' | sed 's/ $//'; }
# The results without timings, keyed by id, for comparing runs.
results() {
  python3 - "$1" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    r.pop("timings", None)
    rows[json.dumps(r["id"])] = r
print(json.dumps(rows, sort_keys=True))
EOF
}

# 1. One uninterrupted run.
"$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output "$TMP/full.jsonl" 2>"$TMP/err"
check "uninterrupted run exits 0" [ $? -eq 0 ]
check "every id once" [ "$(ids "$TMP/full.jsonl")" = "$EXPECTED_IDS" ]
summary "$TMP/full.jsonl" >"$TMP/summary"
expect_code() { grep -qx -- "$1: $2" "$TMP/summary"; }
check "bad JSON" expect_code '"#3"' bad_json
check "missing image" expect_code '"c"' input_error
check "wrong type" expect_code '"d"' bad_request
check "repeated id" expect_code '"#9"' duplicate_id
check "unknown key" expect_code '"g"' bad_request
check "not an object" expect_code '"#13"' bad_request
for id in '"a"' '"b"' '"e"' 7 '"f"' '"h"' '"i"'; do check "result for $id" expect_code "$id" ok; done
check "error messages name the problem" grep -q 'unknown key \\"colour\\"' "$TMP/full.jsonl"
check "beam search reports a score" python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
b = next(x for x in r if x["id"] == "i")
assert "score" in b and len(b["tokens"]) == 3 and b["finish_reason"] == "max_tokens"' "$TMP/full.jsonl"
check "stop strings cut the text" python3 -c '
import json, sys
h = next(x for x in map(json.loads, open(sys.argv[1])) if x["id"] == "h")
assert h["finish_reason"] != "stop" or ("e" not in h["text"] and "a" not in h["text"])' "$TMP/full.jsonl"
check "progress line on a non-terminal stderr" grep -q "^batch: 13/13 (100%)" "$TMP/err"

# 2. Interrupted: a run on the first 5 lines, then a result line cut off mid-write, then the whole input.
head -n 5 "$TMP/requests.jsonl" >"$TMP/prefix.jsonl"
"$BIN" batch --model "$MODEL" --input "$TMP/prefix.jsonl" --output "$TMP/resumed.jsonl" 2>/dev/null
check "prefix run: 5 results" [ "$(wc -l <"$TMP/resumed.jsonl")" -eq 5 ]
printf '{"id": "e", "text": "half a li' >>"$TMP/resumed.jsonl"
"$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output "$TMP/resumed.jsonl" 2>"$TMP/err"
check "resumed run exits 0" [ $? -eq 0 ]
check "partial line reported" grep -q "partial line" "$TMP/err"
check "skipped ids reported" grep -q "5 of 13 requests already in" "$TMP/err"
check "resumed: every id once" [ "$(ids "$TMP/resumed.jsonl")" = "$EXPECTED_IDS" ]
check "resumed == uninterrupted" [ "$(results "$TMP/resumed.jsonl")" = "$(results "$TMP/full.jsonl")" ]

# 3. Killed with SIGKILL as soon as the first result is on disk (when the run is not already over), then rerun.
for i in $(seq 1 12); do
  echo "{\"id\": \"k$i\", \"image\": \"shapes_a.png\", \"prompt\": \"caption en $i\", \"max_tokens\": 24, \"beams\": 2}"
done >"$TMP/many.jsonl"
"$BIN" batch --model "$MODEL" --input "$TMP/many.jsonl" --output "$TMP/many_full.jsonl" 2>/dev/null
"$BIN" batch --model "$MODEL" --input "$TMP/many.jsonl" --output "$TMP/many_killed.jsonl" 2>/dev/null &
pid=$!
for _ in $(seq 1 3000); do
  [ -s "$TMP/many_killed.jsonl" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
echo "killed after $(wc -l <"$TMP/many_killed.jsonl") of 12 results"
"$BIN" batch --model "$MODEL" --input "$TMP/many.jsonl" --output "$TMP/many_killed.jsonl" 2>/dev/null
check "killed + rerun: 12 distinct ids" [ "$(summary "$TMP/many_killed.jsonl" | grep -c ': ok$')" -eq 12 ]
check "killed + rerun == uninterrupted" [ "$(results "$TMP/many_killed.jsonl")" = "$(results "$TMP/many_full.jsonl")" ]

# 4. Nothing left to do: the output stays as it is.
cp "$TMP/full.jsonl" "$TMP/before"
"$BIN" batch --model "$MODEL" --input "$TMP/requests.jsonl" --output "$TMP/full.jsonl" 2>"$TMP/err"
check "complete output: exit 0" [ $? -eq 0 ]
check "complete output: unchanged" cmp -s "$TMP/before" "$TMP/full.jsonl"

# 5. The same decoding options mean the same thing as `generate`'s flags (one parser): top_k alone samples,
# beams above 8 are refused by both.
cat >"$TMP/same.jsonl" <<'EOF'
{"id": "topk", "image": "shapes_a.png", "prompt": "caption en", "max_tokens": 6, "top_k": 40, "seed": 3}
{"id": "beams9", "image": "shapes_a.png", "prompt": "caption en", "beams": 9}
EOF
"$BIN" batch --model "$MODEL" --input "$TMP/same.jsonl" --output "$TMP/same_out.jsonl" 2>/dev/null
"$BIN" generate --model "$MODEL" --image "$TMP/shapes_a.png" --prompt "caption en" --max-tokens 6 --top-k 40 --seed 3 \
  --json >"$TMP/topk.json" 2>/dev/null
"$BIN" generate --model "$MODEL" --image "$TMP/shapes_a.png" --prompt "caption en" --beams 9 >/dev/null 2>"$TMP/beams9.err"
beams9_rc=$?
check "batch top_k alone == generate --top-k" python3 -c '
import json, sys
r = {x["id"]: x for x in map(json.loads, open(sys.argv[1]))}
assert r["topk"]["tokens"] == json.load(open(sys.argv[2]))["tokens"]' "$TMP/same_out.jsonl" "$TMP/topk.json"
check "beams 9: bad_request in batch, usage error in generate" python3 -c '
import json, sys
r = {x["id"]: x for x in map(json.loads, open(sys.argv[1]))}
assert r["beams9"]["error"]["code"] == "bad_request" and "from 1 to 8" in r["beams9"]["error"]["message"]
assert sys.argv[2] == "2" and "from 1 to 8" in open(sys.argv[3]).read()' "$TMP/same_out.jsonl" "$beams9_rc" "$TMP/beams9.err"

# 6. Usage and file errors: one line on stderr.
one_line_error() {  # one_line_error EXPECTED_RC TEXT ARGS...
  local want=$1 text=$2; shift 2
  "$BIN" batch "$@" >/dev/null 2>"$TMP/err"
  local rc=$?
  [ "$rc" -eq "$want" ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- "$text" "$TMP/err"
}
check "missing --input" one_line_error 2 "--input" --model "$MODEL" --output "$TMP/x.jsonl"
check "missing --output" one_line_error 2 "--output" --model "$MODEL" --input "$TMP/requests.jsonl"
check "unreadable input" one_line_error 1 "nope.jsonl" --model "$MODEL" --input "$TMP/nope.jsonl" --output "$TMP/x.jsonl"
echo "not a result" >"$TMP/foreign.jsonl"
check "foreign output file" one_line_error 1 "not a result line" --model "$MODEL" --input "$TMP/requests.jsonl" \
  --output "$TMP/foreign.jsonl"
check "input == output" one_line_error 2 "same file" --model "$MODEL" --input "$TMP/requests.jsonl" \
  --output "$TMP/requests.jsonl"

# 7. Detection / segmentation text: the result carries the same "objects" (boxes, seg codes, masks from --vae) as
# `generate --json` (the reference case's greedy text holds <loc> pieces).
LOC_CASE="$FIX/cases/pg2_loc_detect"
LOC_PROMPT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompt"])' "$LOC_CASE/case.json")
python3 -c '
import json, os, sys
print(json.dumps({"id": "loc", "image": os.path.abspath(sys.argv[1]), "prompt": sys.argv[2], "max_tokens": 12}))' \
  "$LOC_CASE/gray.png" "$LOC_PROMPT" >"$TMP/loc.jsonl"
"$BIN" batch --model "$FIX/models/pg2_f32" --vae "$FIX/vae/vae_small.npz" --input "$TMP/loc.jsonl" \
  --output "$TMP/loc_results.jsonl" 2>/dev/null
"$BIN" generate --model "$FIX/models/pg2_f32" --vae "$FIX/vae/vae_small.npz" --image "$LOC_CASE/gray.png" \
  --prompt "$LOC_PROMPT" --max-tokens 12 --json >"$TMP/loc_generate.json"
check "objects in batch results == generate --json objects" python3 -c '
import json, sys
b, g = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert "<loc" in b["text"] and b["text"] == g["text"] and len(b["objects"]) >= 1 and b["objects"] == g["objects"]
' "$TMP/loc_results.jsonl" "$TMP/loc_generate.json"
check "no objects without <loc> pieces" python3 -c '
import json, sys
assert all("objects" not in r or "<loc" in r["text"] for r in map(json.loads, open(sys.argv[1])) if "text" in r)
' "$TMP/full.jsonl"

finish
