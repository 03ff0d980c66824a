#!/usr/bin/env bash
# Installs the Debian 12 packages the engine builds and tests with (idempotent; needs root or sudo).
#   cmake, g++            build
#   libsentencepiece-dev  the tokenizer (the library the model's tokenizer.model was made with)
#   libjpeg62-turbo-dev   JPEG decoding, bit-exact with PIL (both use libjpeg-turbo)
#   libpng-dev            PNG decoding with full control of 16-bit and palette conversion
#   libwebp-dev           WebP decoding
#   (BMP, GIF, TGA and PNM are decoded in src/media (bmp.cpp, ...): stb_image differs from Pillow on several of
#    their variants, and pixel parity with the reference is the requirement)
#   nlohmann-json3-dev    config.json, safetensors headers, JSON output
#   libcpp-httplib-dev    the HTTP server of `paligemma serve` (threaded, chunked responses for streaming)
#   libavformat-dev libavcodec-dev libswscale-dev libavutil-dev   --video: demuxing, decoding, YUV -> RGB (FFmpeg)
#   zlib1g-dev            deflated members of .npz files (the segmentation mask decoder vae-oid.npz)
#   libfreetype-dev fonts-dejavu-core   overlay labels: FreeType renders DejaVu Sans (any script DejaVu covers)
#   libgtest-dev          unit tests
#   chromium nodejs npm   the browser test of the server's page (tests/browser: headless Chromium driven by
#                         playwright-core, which `npm ci` installs there without downloading a browser)
#   clang libclang-rt-dev libomp-dev   scripts/fuzz.sh: the libFuzzer targets of tests/fuzz (libFuzzer and the
#                         sanitizers' runtimes; OpenMP for clang)
#   python3-numpy python3-pil   tools/synthetic/scenes.py draws the synthetic scenes that scripts/demo.sh and
#                         tools/synthetic/evaluate.py run the embedded model on; the Python module's
#                         images as arrays (numpy without a copy, PIL images)
#   python3-dev pybind11-dev python3-pytest   the Python module (tools/python) and its pytest suite
#   python3-distributed   python3 -m paligemma.label: labelling jobs on a Dask cluster (and its LocalCluster test)
#   nginx                 tests/nginx_test.sh: several `paligemma serve` behind nginx on loopback
#   curl                  tests/nginx_test.sh: its requests through nginx and to each backend
set -euo pipefail
PKGS="cmake g++ make pkg-config libsentencepiece-dev libjpeg62-turbo-dev libpng-dev libwebp-dev
      nlohmann-json3-dev libcpp-httplib-dev libgtest-dev python3 libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
      zlib1g-dev libfreetype-dev fonts-dejavu-core python3-numpy python3-pil chromium nodejs npm
      clang libclang-rt-dev libomp-dev python3-dev pybind11-dev python3-pytest python3-distributed nginx curl"
missing=""
# Present: installed, or provided by an installed package (NodeSource's nodejs provides npm and conflicts with
# Debian's npm).
present() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
  local provided
  provided="$(dpkg-query -W -f='${db:Status-Abbrev}${Provides}\n' 2>/dev/null | grep '^ii')"
  grep -Eq "[ ,]$1( |,|\$)" <<<"$provided"
}
for p in $PKGS; do
  present "$p" || missing="$missing $p"
done
if [ -n "${missing// }" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
