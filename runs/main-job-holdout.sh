#!/usr/bin/env bash
# Issue 31 follow-up: the MRPC main job with data.selection: holdout. Every training stage
# holds a fixed 10% of the training set out and keeps its best checkpoint on it, so the
# dev scores (teacher's and successor's) carry no selection luck; otherwise the set-up
# command's defaults, seed 42, in a fresh workspace (default ws/main-job-holdout).
# Log: runs/results/main-job-holdout.log. 11 minutes on the idle 2-core machine (the log: 552 + 75 + 14 s).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-holdout}
[ -e "$WS" ] && { echo "$WS exists: pass a new workspace path" >&2; exit 2; }
theseus init "$WS" --glue-dir ../shared/glue
cd "$WS"
sed -i 's/^  selection: dev /  selection: holdout /' theseus.yaml
grep -q '^  selection: holdout ' theseus.yaml
for cmd in "replace --scheduler linear" "finetune-successor" "evaluate --speed-batches 1"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=120 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
