#!/usr/bin/env bash
# Times `wayline validate` over the real-file corpus (../shared/waypoint-corpus, or
# WAYLINE_CORPUS_DIR), one process per file as a user runs it, and prints the median and p90
# per file (BENCHMARKS.md, issue 11).
#
#   bash scripts/bench-validate-corpus.sh target/release/wayline [RUNS]
#
# Each folder is copied to a scratch dir made a git repository (git functions need one), as
# the corpus's run.sh does; every file is validated RUNS times (default 5) and each file's
# median counts. Scratch space is removed on exit.
set -euo pipefail
BIN=${1:?usage: bench-validate-corpus.sh /path/to/wayline [RUNS]}
RUNS=${2:-5}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# `../shared/waypoint-corpus` from the repository root or a folder above it (worktrees).
CORPUS=${WAYLINE_CORPUS_DIR:-}
if [ -z "$CORPUS" ]; then
  for up in .. ../.. ../../..; do
    [ -f "$ROOT/$up/shared/waypoint-corpus/MANIFEST.tsv" ] && { CORPUS="$ROOT/$up/shared/waypoint-corpus"; break; }
  done
fi
[ -n "$CORPUS" ] && [ -f "$CORPUS/MANIFEST.tsv" ] || { echo "no corpus at $CORPUS (set WAYLINE_CORPUS_DIR)" >&2; exit 2; }
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/wl-bench-corpus.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT INT TERM
export HOME="$SCRATCH/home" NO_COLOR=1 GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@localhost \
  GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@localhost
unset WAYLINE_WORKSPACE WAYPOINT_WORKSPACE 2>/dev/null || true
mkdir -p "$HOME"
while IFS=$'\t' read -r folder _rest; do
  [ "$folder" = folder ] && continue
  [ -d "$CORPUS/$folder" ] || continue
  cp -a "$CORPUS/$folder" "$SCRATCH/w-$folder"
  ( cd "$SCRATCH/w-$folder" && git init -q && git add -A && git commit -qm bench ) >/dev/null 2>&1
done <"$CORPUS/MANIFEST.tsv"
python3 - "$BIN" "$RUNS" "$SCRATCH" <<'PY'
import os, statistics, subprocess, sys, time
bin_, runs, scratch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
dirs = sorted(d for d in os.listdir(scratch) if d.startswith("w-"))
per_file = []
for d in dirs:
    cwd = os.path.join(scratch, d)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([bin_, "validate"], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    per_file.append(statistics.median(times))
per_file.sort()
p90 = per_file[int(len(per_file) * 0.9) - 1]
print(f"{len(per_file)} files x {runs} runs: median {statistics.median(per_file):.2f} ms per file, "
      f"p90 {p90:.2f} ms, max {per_file[-1]:.2f} ms")
PY
