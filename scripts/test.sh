#!/usr/bin/env bash
# Runs every test tier from one build: format, lints, unit + integration + end-to-end tests
# (Docker tests skip with a reason unless WAYLINE_REQUIRE_DOCKER=1), and the third-party
# Python client. This is the command README.md gives; CI calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "building the static entrypoint"
WAYLINE_ENTRYPOINT_BINARY="$(bash scripts/build-entrypoint.sh)"
export WAYLINE_ENTRYPOINT_BINARY
# The entrypoint crate's Docker test reuses it instead of building its own.
export WAYLINE_ENTRYPOINT_STATIC="$WAYLINE_ENTRYPOINT_BINARY"
echo "entrypoint: $WAYLINE_ENTRYPOINT_BINARY"

step "cargo build (workspace, all targets)"
cargo build --workspace --all-targets --locked

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked --no-fail-fast -- --test-threads=2

step "third-party client (Python grpcio)"
python3 tests/thirdparty/client.py --wayline target/debug/wayline

echo
echo "All test tiers passed."
