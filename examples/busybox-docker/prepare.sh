#!/bin/sh
# Copies the static busybox binary into the build context (a Dockerfile can't reach
# /usr/bin/busybox outside it). Needs Debian's busybox-static package.
set -eu
cd "$(dirname "$0")"
src="${BUSYBOX:-/usr/bin/busybox}"
if ! [ -x "$src" ]; then
  echo "prepare.sh: $src not found; install busybox-static or set BUSYBOX=/path/to/static/busybox" >&2
  exit 1
fi
cp "$src" ./busybox
echo "copied $src to $(pwd)/busybox"
