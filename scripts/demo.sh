#!/usr/bin/env bash
# Installs dependencies, builds the engine and runs it on a bundled image with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target paligemma
IMAGE=${1:-tests/fixtures/images/png/rgb_300x201.png}
echo "\$ build/paligemma generate --image $IMAGE --prompt \"caption en\" --max-tokens 12"
build/paligemma generate --image "$IMAGE" --prompt "caption en" --max-tokens 12
echo "(the embedded default is a tiny random-weight test model: its text is noise; pass --model DIR for a real checkpoint)"
