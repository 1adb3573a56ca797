#!/usr/bin/env bash
# From a fresh Debian machine to a running app in one command: installs Docker and
# busybox-static when missing, starts dockerd when it is not running, builds `wayline` and its
# static entrypoint, then runs `wayline up` on examples/busybox-docker with the embedded
# default server and fetches the page it serves.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
dpkg -s busybox-static >/dev/null 2>&1 || missing="$missing busybox-static"
if [ -n "$missing" ]; then
  echo "==> installing:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd in the background (log: /tmp/wayline-dockerd.log)"
  $SUDO sh -c 'nohup dockerd >/tmp/wayline-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/wayline-dockerd.log" >&2; exit 1; }
fi

echo "==> building wayline"
cargo build --release --locked -p wayline-cli
echo "==> building the static wayline-entrypoint"
entrypoint="$(bash scripts/build-entrypoint.sh)"
cp "$entrypoint" target/release/wayline-entrypoint
export PATH="$root/target/release:$PATH"

echo "==> wayline up (examples/busybox-docker)"
cd examples/busybox-docker
./prepare.sh >/dev/null
wayline up

url="$(wayline release list -json | python3 -c 'import json,sys; r=[x for x in json.load(sys.stdin) if x["live"]]; print(r[0]["url"] if r else "")')"
if [ -n "$url" ]; then
  echo "==> GET $url"
  curl -fsS "$url" || true
fi
echo
echo "Next (in examples/busybox-docker): \`wayline logs\`, \`wayline exec -- ls /\`, \`wayline status\`,"
echo "\`wayline up\` again then \`wayline rollback\`, \`wayline destroy\`, \`wayline server stop\`"
echo "(the binaries are in $root/target/release)."
