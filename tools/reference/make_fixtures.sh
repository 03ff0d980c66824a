#!/usr/bin/env bash
# Regenerates tests/fixtures/{tokenizer,models,cases} inside the Debian sid reference root.
# Run from the host, in the repository root (tools/reference/reference-root.sh mounts the project inside):
#   sudo tools/reference/reference-root.sh run -- bash tools/reference/make_fixtures.sh [make_fixtures.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 tools/reference/make_fixtures.py "$@"
