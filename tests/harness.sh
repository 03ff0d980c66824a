# Shared by the shell test scripts (source it): a temporary directory removed on exit, pass/fail counters,
# `check NAME COMMAND...` and `finish` (prints the closing "N passed, N failed" line and sets the exit code).
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
passes=0

check() {  # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then passes=$((passes + 1)); else echo "FAIL: $name"; failures=$((failures + 1)); fi
}

finish() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}
