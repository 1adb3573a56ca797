#!/usr/bin/env bash
# Times release `wayline validate` of a generated file with tens of thousands of apps (issue 10:
# "an 8 MB file loads in under a second") and prints the median wall time and max RSS.
#
#   bash scripts/bench-validate-large.sh target/release/wayline [MB] [RUNS]
#
# The file has the shape of crates/wayline-config/tests/it/large.rs (one ~150-byte app with
# labels, build and deploy per app; 8 MB is 54,544 apps), written to a scratch git repository
# that is removed on exit.
set -euo pipefail
BIN=${1:?usage: bench-validate-large.sh /path/to/wayline [MB] [RUNS]}
MB=${2:-8}
RUNS=${3:-5}
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/wl-bench-large.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT INT TERM
python3 - "$SCRATCH/wayline.hcl" "$MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
parts, size, n = ['project = "big"\n'], 17, 0
while size < mb << 20:
    app = ('app "svc-%d" {\n  labels = { "tier" = "backend" }\n  build {\n    use "docker" {}\n  }\n'
           '  deploy {\n    use "docker" {\n      service_port = %d\n    }\n  }\n}\n') % (n, 3000 + n % 1000)
    parts.append(app)
    size += len(app)
    n += 1
open(path, "w").write("".join(parts))
print(f"{size} bytes, {n} apps", file=sys.stderr)
PY
( cd "$SCRATCH" && git init -q && git add -A \
  && git -c user.name=b -c user.email=b@localhost commit -qm bench ) >/dev/null 2>&1 || true
python3 - "$BIN" "$RUNS" "$SCRATCH" <<'PY'
import os, resource, statistics, subprocess, sys, time
bin_, runs, cwd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times, rss = [], 0
for _ in range(runs):
    t = time.perf_counter()
    p = subprocess.run([bin_, "validate"], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    times.append(time.perf_counter() - t)
    if p.returncode != 0:
        sys.exit(f"validate failed: {p.stderr.decode()[:2000]}")
    rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(f"{runs} runs: median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
      f"max {max(times):.3f} s, max RSS {rss // 1024} MB")
PY
