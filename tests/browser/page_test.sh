#!/usr/bin/env bash
# ctest entry of the browser test: skips (exit 77) only when node or Debian's chromium are missing, then
# runs page_test.mjs. `npm ci` in this folder (scripts/test.sh does it) provides playwright-core.
# usage: page_test.sh PALIGEMMA_BINARY FIXTURES_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CHROMIUM=/usr/bin/chromium
if ! command -v node >/dev/null; then
  echo "SKIP: node is not installed (apt-get install nodejs npm)"; exit 77
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "SKIP: $CHROMIUM is not installed (apt-get install chromium)"; exit 77
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "FAIL: playwright-core is missing: run 'npm ci' in $here (scripts/test.sh does)"; exit 1
fi
exec node "$here/page_test.mjs" "$@" "$CHROMIUM"
