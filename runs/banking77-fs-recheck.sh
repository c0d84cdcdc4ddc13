#!/usr/bin/env bash
# Issue 31 recheck with today's code: since 2026-12-06 16:49 finetune-successor scores its
# input at step 0, whose data loader draws from the random number generator, so its epochs
# see other dropout masks than the run of runs/banking77-main.sh (log
# runs/results/banking77-defaults.log, made before that change). This copies that
# workspace's teacher and replace (same code, same numbers) into a new workspace
# (default ws/banking77-recheck) and runs finetune-successor and evaluate again there.
# Log: runs/results/banking77-fs-recheck.log. About 5 minutes on the idle 2-core machine.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run
cd "$(dirname "$0")/.." && . .venv/bin/activate
SRC=ws/banking77 WS=${1:-ws/banking77-recheck}
[ -e "$WS" ] && { echo "$WS exists: pass a new workspace path" >&2; exit 2; }
mkdir -p "$WS/artifacts/banking77"
cp "$SRC/theseus.yaml" "$WS/"
for stage in finetune-teacher replace; do
  mkdir -p "$WS/artifacts/banking77/$stage"
  cp -a "$SRC/artifacts/banking77/$stage/v1" "$WS/artifacts/banking77/$stage/"
done
cd "$WS"
theseus verify
run finetune-successor
run evaluate --speed-repeats 3
