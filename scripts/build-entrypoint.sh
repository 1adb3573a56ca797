#!/usr/bin/env bash
# Builds the static `wayline-entrypoint` (glibc, +crt-static) that platforms put into deployments.
# It runs on `FROM scratch`, Alpine/musl and glibc images alike. A separate target dir keeps the
# RUSTFLAGS from invalidating everyone else's builds. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile entrypoint -p wayline-entrypoint \
  --target "$target" --target-dir target/entrypoint >&2
echo "$PWD/target/entrypoint/$target/entrypoint/wayline-entrypoint"
