#!/usr/bin/env bash
# The reference environment of paligemma.cpp: a Debian sid root holding the implementation the engine is
# compared with (Hugging Face transformers and PyTorch on CPU, with SentencePiece, safetensors, Pillow and
# numpy), all of it Debian packages. The fixture generators (tools/reference/), the embedded model's training
# (tools/synthetic/train.py) and the transformers side of the benchmarks (tools/bench/) run inside it.
#
#   sudo tools/reference/reference-root.sh [OPTIONS] build            build the root once, or check it
#   sudo tools/reference/reference-root.sh [OPTIONS] run [--] CMD...  run CMD inside (building it first)
#   sudo tools/reference/reference-root.sh [OPTIONS] shell            an interactive shell inside
#
# Options:
#   --root DIR    where the root lives (default: $PG_REFERENCE_ROOT, else /var/lib/paligemma-reference)
#   --mirror URL  Debian mirror for debootstrap and apt (default: $PG_REFERENCE_MIRROR, else
#                 http://deb.debian.org/debian)
#   --as-root     run CMD as root; by default, under sudo, CMD runs as the user who called sudo, so that the
#                 files it writes into the project belong to that user
#
# Inside the root, this project (the repository holding this script) is bind-mounted at /project and is the
# working directory, so project-relative paths work unchanged. The root's own /tmp is DIR/tmp on the host;
# the full-size benchmark checkpoints are made there (docs/benchmarks.md). /proc, /sys (read-only) and /dev
# are mounted for the command's lifetime and unmounted when it ends, however it ends. Commands on the same
# root run one at a time (a lock on DIR.lock), so concurrent callers wait rather than share the mounts.
#
# The first build needs debootstrap (installed with apt-get when missing), network access to the mirror,
# about 3 GB in DIR and 5-15 minutes. Changing the package list below makes the next call install it.
set -euo pipefail

PACKAGES=(python3-transformers python3-torch python3-safetensors python3-pil python3-sentencepiece
          python3-protobuf python3-numpy python3-tokenizers sentencepiece
          # without an optimized BLAS torch's float32 products fall back to the reference BLAS (much slower)
          libopenblas0-pthread)
PROJECT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
INSIDE=/project
ROOT=${PG_REFERENCE_ROOT:-/var/lib/paligemma-reference}
MIRROR=${PG_REFERENCE_MIRROR:-}
AS_ROOT=0
ME=$(basename "$0")

die() { echo "$ME: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

while [ $# -gt 0 ]; do
  case $1 in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; shift ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR=$2; shift 2 ;;
    --mirror=*) MIRROR=${1#--mirror=}; shift ;;
    --as-root) AS_ROOT=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
COMMAND=$1; shift
case $COMMAND in
  build|shell) [ $# -eq 0 ] || die "$COMMAND takes no arguments" ;;
  run) [ "${1:-}" = -- ] && shift; [ $# -ge 1 ] || die "run needs a command: $ME run -- CMD..." ;;
  *) die "unknown command '$COMMAND' (build, run or shell; see --help)" ;;
esac

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts): sudo $0 $COMMAND ..."
[ "$(uname -s)" = Linux ] || die "needs Linux"
case $ROOT in /*) ;; *) ROOT=$PWD/$ROOT ;; esac
ROOT=${ROOT%/}
if [ -z "$ROOT" ] || [ "$ROOT" = / ]; then die "--root must not be /"; fi
case $PROJECT/ in "$ROOT"/*) die "the root ($ROOT) must not contain the project ($PROJECT)" ;; esac
DEFAULT_MIRROR=http://deb.debian.org/debian
MARKER=$ROOT/.paligemma-reference-packages

# One caller per root at a time: builds and mounts are not safe to share.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
if ! flock -n 9; then
  echo "$ME: waiting for another command on $ROOT to finish" >&2
  flock 9
fi

MOUNTED=()
unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null \
      || echo "$ME: could not unmount ${MOUNTED[i]}" >&2
  done
  MOUNTED=()
}
trap unmount_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# mount_in TARGET MOUNT-ARGS...: mount under the root, remembering it for unmount_all. A mount left behind by
# a caller that was killed hard (kill -9) is removed first; the lock says nobody else is using it.
mount_in() {
  local target=$ROOT$1; shift
  mkdir -p "$target"
  while mountpoint -q "$target"; do umount "$target" || umount -l "$target"; done
  mount "$@" "$target"
  MOUNTED+=("$target")
}

mount_system() {
  mount_in /proc -t proc proc
  mount_in /sys -t sysfs -o ro,nosuid,nodev,noexec sysfs
  mount_in /dev --bind /dev
  mount --make-private "$ROOT/dev"
}

build() {
  if [ "$(cat "$MARKER" 2>/dev/null)" = "${PACKAGES[*]}" ]; then
    return 0
  fi
  local mirror=${MIRROR:-$DEFAULT_MIRROR} log
  log=$(mktemp "${TMPDIR:-/tmp}/paligemma-reference.XXXXXX")
  if [ ! -e "$ROOT/etc/debian_version" ]; then
    if ! command -v debootstrap >/dev/null; then
      command -v apt-get >/dev/null || die "debootstrap is missing; install it (Debian/Ubuntu: apt-get install debootstrap)"
      echo "$ME: installing debootstrap" >&2
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; die "could not install debootstrap (log: $log)"; }
    fi
    echo "$ME: debootstrap sid into $ROOT from $mirror (several minutes)" >&2
    mkdir -p "$ROOT"
    debootstrap --variant=minbase --include=ca-certificates sid "$ROOT" "$mirror" >"$log" 2>&1 \
      || { tail -n 20 "$log" >&2; die "debootstrap failed (log: $log); remove $ROOT before retrying"; }
  fi
  if [ -n "$MIRROR" ] && [ "$MIRROR" != "$DEFAULT_MIRROR" ]; then
    # A mirror's copy of sid may be older than its Release file's validity window.
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99paligemma-reference"
    echo "deb $MIRROR sid main" >"$ROOT/etc/apt/sources.list"
  fi
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  echo "$ME: installing ${PACKAGES[*]}" >&2
  mount_system
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' \
    sh "${PACKAGES[@]}" >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "installing the packages failed (log: $log)"; }
  unmount_all
  echo "${PACKAGES[*]}" >"$MARKER"
  rm -f "$log"
}

# run_inside CMD...: CMD in the root, the project mounted at $INSIDE and the working directory.
run_inside() {
  mount_system
  mount_in "$INSIDE" --bind "$PROJECT"
  mount --make-private "$ROOT$INSIDE"
  local user=()
  if [ "$AS_ROOT" = 0 ] && [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ]; then
    user=(--userspec="$SUDO_UID:${SUDO_GID:-$SUDO_UID}")
    export HOME=/tmp
  else
    export HOME=/root
  fi
  # The caller's environment passes through (OMP_NUM_THREADS, PG_*, ...); PATH is the root's.
  local status=0
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin chroot "${user[@]}" "$ROOT" \
    /usr/bin/env -C "$INSIDE" "$@" || status=$?
  return "$status"
}

build
case $COMMAND in
  build)
    run_inside python3 -c 'import sys, torch, transformers, safetensors, sentencepiece, numpy, PIL
print("reference root ready: python", sys.version.split()[0], "torch", torch.__version__,
      "transformers", transformers.__version__, "sentencepiece", sentencepiece.__version__,
      "numpy", numpy.__version__, "Pillow", PIL.__version__)' ;;
  shell) run_inside bash -l ;;
  run) run_inside "$@" ;;
esac
