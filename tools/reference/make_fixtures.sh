#!/usr/bin/env bash
# Regenerates tests/fixtures/{tokenizer,models,cases} inside the Debian sid reference root.
# Run from the host (the project is bind-mounted at /mnt/work inside the root):
#   flock /tmp/sid-ref.lock /work/shared/reference/sid-root.sh /opt/sid-ref run /work/main -- \
#       bash tools/reference/make_fixtures.sh [make_fixtures.py options]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 tools/reference/make_fixtures.py "$@"
