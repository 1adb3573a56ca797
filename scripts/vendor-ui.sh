#!/usr/bin/env bash
# Fetches the web UI's vendored npm packages again at their pinned versions, checks each tarball
# against the registry's sha512 integrity, and copies the files the server embeds into
# crates/wayline-server/src/ui/assets/. Needs only curl, sha512sum, base64 and tar (no Node).
set -euo pipefail
dest="$(cd "$(dirname "$0")/.." && pwd)/crates/wayline-server/src/ui/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fetch() { # name version tarball-name integrity
  local url="https://registry.npmjs.org/$1/-/$3-$2.tgz"
  curl -fsSL "$url" -o "$work/$3.tgz"
  local got="sha512-$(sha512sum "$work/$3.tgz" | cut -d' ' -f1 | xxd -r -p | base64 -w0)"
  [ "$got" = "$4" ] || { echo "integrity mismatch for $1@$2: $got" >&2; exit 1; }
  mkdir -p "$work/$3" && tar xzf "$work/$3.tgz" -C "$work/$3"
}
fetch htmx.org 2.0.11 htmx.org sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==
fetch htmx-ext-sse 2.2.4 htmx-ext-sse sha512-LJmxVhykyflBWgh5PvbRidcyuqMHlgfajmmzumvKctv9puvsufeH6OaejSMZTNTnEI8O2wXXn4ZZtBdpEMqmEQ==
fetch @xterm/xterm 6.0.0 xterm sha512-TQwDdQGtwwDt+2cgKDLn0IRaSxYu1tSUjgKarSDkUM0ZNiSRXFpjxEsvc/Zgc5kq5omJ+V0a8/kIM2WD3sMOYg==
cp "$work/htmx.org/package/dist/htmx.min.js" "$dest/htmx-2.0.11.min.js"
cp "$work/htmx.org/package/LICENSE" "$dest/htmx.LICENSE"
cp "$work/htmx-ext-sse/package/dist/sse.min.js" "$dest/htmx-ext-sse-2.2.4.min.js"
cp "$work/htmx-ext-sse/package/LICENSE" "$dest/htmx-ext-sse.LICENSE"
cp "$work/xterm/package/lib/xterm.js" "$dest/xterm-6.0.0.js"
cp "$work/xterm/package/css/xterm.css" "$dest/xterm-6.0.0.css"
cp "$work/xterm/package/LICENSE" "$dest/xterm.LICENSE"
echo "vendored into $dest"
