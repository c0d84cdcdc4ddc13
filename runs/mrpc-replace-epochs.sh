#!/usr/bin/env bash
# Issue 31 follow-up: does a longer `replace` lift the MRPC main job's successor (95.3% of
# the 85.43 teacher with the defaults)? In the main job's workspace (default
# ws/main-job-2, made by runs/main-job.sh), the same teacher: replace at most EPOCHS
# epochs (default 8; the ramp's 65% and the patience follow), then finetune-successor,
# then evaluate. One seed (42): a lead, not a verdict.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2} EPOCHS=${EPOCHS:-8}
cd "$WS"
run replace --epochs "$EPOCHS"
v=$(ls -d artifacts/MRPC/replace/v* | sort -V | tail -1 | xargs basename)
run finetune-successor --from "replace=$v"
run evaluate --speed-batches 1
