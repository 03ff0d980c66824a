#!/usr/bin/env bash
# The installed package: installs BUILD_DIR (as it is built) to a scratch prefix, then builds examples/detect.cpp
# out of tree against it twice — find_package(paligemma) (tests/install/CMakeLists.txt) and pkg-config with g++
# — and runs each on the installed default model, which must find the red square of a test image.
# usage: install_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
BUILD=$1
SRC=$2
source "$(dirname "$0")/harness.sh"
PREFIX="$TMP/prefix"
MODEL="$PREFIX/share/paligemma/default-model"
IMAGE="$SRC/tests/fixtures/images/png/rgb_300x201.png"  # a red square the embedded model finds

finds_red_square() {  # PROGRAM: prints the square's box in pixels
  "$1" "$MODEL" "$IMAGE" >"$TMP/out" 2>"$TMP/err" && grep -Eq '^red square: box [0-9]+ [0-9]+ [0-9]+ [0-9]+$' "$TMP/out"
}

cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1
check "cmake --install succeeds" test $? -eq 0
check "headers installed" test -f "$PREFIX/include/paligemma/engine.h"
check "library installed" test -n "$(find "$PREFIX" -name 'libpaligemma.*' -print -quit)"
check "CMake package installed" test -n "$(find "$PREFIX" -name paligemmaConfig.cmake -print -quit)"
PC=$(find "$PREFIX" -name paligemma.pc -print -quit)
check "pkg-config file installed" test -n "$PC"
check "default model installed" test -f "$MODEL/config.json"

cmake -S "$SRC/tests/install" -B "$TMP/cmake-consumer" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DPG_EXAMPLE="$SRC/examples/detect.cpp" >"$TMP/configure.log" 2>&1 &&
  cmake --build "$TMP/cmake-consumer" >"$TMP/build.log" 2>&1
check "find_package(paligemma) consumer builds" test $? -eq 0
check "find_package consumer finds the red square" finds_red_square "$TMP/cmake-consumer/detect"

export PKG_CONFIG_PATH="$(dirname "${PC:-.}")"
# -rpath: a shared libpaligemma is found where it was installed.
g++ -std=c++20 -O1 "$SRC/examples/detect.cpp" -o "$TMP/detect-pc" $(pkg-config --cflags --libs paligemma) \
  -Wl,-rpath,"$(pkg-config --variable=libdir paligemma)" >"$TMP/pc-build.log" 2>&1
check "pkg-config consumer builds" test $? -eq 0
check "pkg-config consumer finds the red square" finds_red_square "$TMP/detect-pc"

if [ "$failures" -ne 0 ]; then
  for log in install configure build pc-build; do
    [ -f "$TMP/$log.log" ] && { echo "--- $log.log"; tail -n 30 "$TMP/$log.log"; }
  done
  echo "--- the last program's output"; cat "$TMP/out" "$TMP/err" 2>/dev/null
fi
finish
