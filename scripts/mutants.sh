#!/bin/bash
# Mutation testing of one module with only the tests that exercise it
# (docs/mutants.md). Usage:
#   scripts/mutants.sh MODULE            every mutant of MODULE
#   scripts/mutants.sh MODULE --missed   only those the last run of MODULE missed
#   MUTANTS_RE=REGEX scripts/mutants.sh MODULE --missed   ... and those REGEX names
# Results go to target/mutants/MODULE (target/mutants/MODULE-missed).
# cargo-mutants mutates the tree in place: run it in a worktree of its own,
# not where you edit. It runs in private IPC and mount namespaces
# (scripts/in-private-ipc.sh): a mutant that skips an unlink leaks by design.
set -euo pipefail
cd "$(dirname "$0")/.."
module=${1:?usage: scripts/mutants.sh MODULE [--missed]}
mode=${2:-}
# A module with no unit tests in its own files runs without --lib: each
# mutant then builds the crate once, not twice.
case $module in
  process) files='src/process/*.rs'; tests="--lib --test=process_api --test=process_wide --test=processes" ;;
  sys) files='src/sys.rs'; tests="--lib --test=process_api --test=shm --test=mq" ;;
  queue) files='src/queue.rs'; tests="--lib --test=queue_api --test=queue_kill --test=queue" ;;
  sync) files='src/sync/*.rs'; tests="--lib --test=shm --test=shm_props --test=queue_api --test=queue_kill --test=process_wide" ;;
  shm) files='src/shm/*.rs'; tests="--lib --test=shm --test=shm_props" ;;
  pool) files='src/pool.rs'; tests="--test=pool" ;;
  manager) files='src/manager/*.rs'; tests="--lib --test=manager --test=manager_anywhere" ;;
  mq) files='src/mq/*.rs'; tests="--lib --test=mq" ;;
  channel) files='src/channel/*.rs'; tests="--test=channel" ;;
  csp) files='src/csp.rs'; tests="--lib --test=csp" ;;
  frame) files='src/frame.rs'; tests="--lib --test=channel" ;;
  pyvalue) files='src/pyvalue.rs'; tests="--lib --test=channel --test=manager" ;;
  names|region) files="src/$module/*.rs"; tests="--lib --test=shm --test=mq" ;;
  *) echo "unknown module $module" >&2; exit 2 ;;
esac
out=target/mutants/$module
select=()
if [ "$mode" = --missed ]; then
  list=$out/mutants.out/missed.txt
  [ -f "$list" ] || { echo "no earlier run: $list" >&2; exit 2; }
  # One regex per missed mutant, without its line and column (they move
  # when tests or code are added).
  while read -r line; do
    select+=(--re "$(python3 -c 'import re,sys; f,d=sys.argv[1].split(":",1)[0],sys.argv[1].split(": ",1)[1]; print("^"+re.escape(f)+r":\d+:\d+: "+re.escape(d)+"$")' "$line")")
  done < "$list"
  out=$out-missed
fi
# MUTANTS_RE adds mutants by name, e.g. those of a function renamed since the
# last run (its old names no longer match anything).
if [ -n "${MUTANTS_RE:-}" ]; then select+=(--re "$MUTANTS_RE"); fi
mkdir -p "$out"
cargo_args=(); for t in $tests; do cargo_args+=("--cargo-arg=$t"); done
cargo mutants --version >/dev/null 2>&1 || cargo install cargo-mutants --locked
# No debug info: each mutant's build links faster, and no test reads it.
export CARGO_PROFILE_DEV_DEBUG=0
exec scripts/in-private-ipc.sh nice -n 19 cargo mutants --in-place -f "$files" "${select[@]}" \
  --timeout 60 --test-tool cargo -o "$out" "${cargo_args[@]}"
