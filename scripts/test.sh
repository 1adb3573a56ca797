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

step "dependency hygiene: cargo machete, cargo deny, MSRV"
for tool in cargo-machete cargo-deny; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: cargo install --locked $tool"; exit 1; }
done
# Unused dependencies (a crate whose library name differs from its package is listed in its
# Cargo.toml under [package.metadata.cargo-machete]).
cargo machete
# Licences, sources and duplicate versions (deny.toml). Advisories need the RustSec database,
# which CI cannot fetch: checked only when a copy is already on disk.
cargo deny --locked check bans licenses sources
if compgen -G "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/*/.git" >/dev/null; then
  cargo deny --frozen check advisories
else
  echo "cargo deny advisories: skipped (no RustSec database under ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs)"
fi
# The declared MSRV (workspace rust-version) must be at least every dependency's; clippy's
# incompatible_msrv lint (below, -D warnings) holds our own code to it.
python3 scripts/check-msrv.py

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
