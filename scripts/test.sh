#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test (unit, parity, command line, server, the
# server's page in Chromium) with ctest.
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   the same suite built with AddressSanitizer + UBSan (-DPG_SANITIZE=address)
#                                in build-asan/; any sanitizer report, leaks at exit included, fails its test
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") build=build; cmake_args=() ;;
  --sanitize) build=build-asan; cmake_args=(-DPG_SANITIZE=address) ;;
  *) echo "usage: scripts/test.sh [--sanitize]" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh
# playwright-core for tests/browser: `npm ci` only when package-lock.json changed since the last install, so
# that runs without network work once it is installed.
if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.installed-lock.json; then
  (cd tests/browser && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-lock.json)
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
if [ -n "${cmake_args[*]}" ]; then
  # halt_on_error: the first report ends the process with a failure; UBSan stops at its first finding too
  # (-fno-sanitize-recover).
  export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1"
fi
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
