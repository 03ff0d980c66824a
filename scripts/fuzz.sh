#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (build-fuzz/, -DPG_BUILD_FUZZERS=ON) and runs each
# for SECONDS (default 60) on a scratch copy of its corpus and regressions, so that what a run adds never
# lands in the repository. Prints one line per target (executions, new corpus entries, result) and exits
# non-zero on any finding — crash, sanitizer report, leak, timeout, memory limit — naming the input file
# libFuzzer saved. docs/testing.md says how to keep a fixed finding as a regression.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DPG_BUILD_FUZZERS=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzzers
targets=(safetensors gguf npz image config_json server_request batch_line)
runs="$PWD/build-fuzz/fuzz-runs"
failed=0
summary=()
for t in "${targets[@]}"; do
  work="$runs/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/"
  if [ -d tests/fuzz/regressions/"$t" ]; then cp tests/fuzz/regressions/"$t"/* "$work/corpus/"; fi
  seeds=$(find "$work/corpus" -type f | wc -l)
  echo "== $t: ${seconds}s, log in $work/log"
  rc=0
  build-fuzz/tests/fuzz/"$t"_fuzzer -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  added=$(( $(find "$work/corpus" -type f | wc -l) - seeds ))
  finding=$(find "$work/artifacts" -type f | head -1)
  if [ "$rc" = 0 ] && [ -z "$finding" ]; then
    result=ok
  else
    result="FINDING (exit $rc): ${finding:-no input saved, see $work/log}"
    failed=1
    tail -40 "$work/log" >&2
  fi
  summary+=("$(printf '%-15s %12s executions %6s new corpus entries  %s' "$t" "${execs:-?}" "$added" "$result")")
done
printf '%s\n' "== fuzz summary (${seconds}s per target)" "${summary[@]}"
exit "$failed"
