#!/usr/bin/env bash
# The README's "then try" commands, run in order after scripts/quickstart.sh on the deployment
# it made (examples/busybox-docker), each checked for what a user should see. CI runs it so
# the README's commands keep working; it ends with `destroy` and `server stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/target/release:$PATH"
cd examples/busybox-docker

step() { echo "==> wayline $*"; }
out="" # the last command's output, for steps that read it
expect() { # expect <what the output must contain> <command...>
  local want="$1"; shift
  step "$@"
  out="$(wayline "$@" 2>&1)" || { echo "$out"; echo "\`wayline $*\` failed" >&2; exit 1; }
  echo "$out"
  grep -qF -- "$want" <<<"$out" || { echo "\`wayline $*\` did not print \`$want\`" >&2; exit 1; }
}

expect "[entrypoint]" logs -follow=false
expect "www" exec -- ls /
expect "live" status
expect "The deploy was successful" up
# The data dir may hold history from earlier runs on this machine (destroy keeps history), so
# the deployment to roll back to is the one before the deployment this `up` made.
deployed="$(grep -oE 'Deploying web v[0-9]+ with' <<<"$out" | grep -oE '[0-9]+' | head -1)"
[[ -n "$deployed" ]] || { echo "\`wayline up\` did not name the deployment it made" >&2; exit 1; }
expect "Rolling back to deployment v$((deployed - 1))" rollback
expect "Destroyed" destroy -auto-approve
expect "destroyed" status
expect "Stopped your local server" server stop
echo "README next steps: all passed"
