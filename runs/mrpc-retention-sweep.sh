#!/usr/bin/env bash
# Issue 31 follow-up: what lifts the MRPC main job's successor towards 98% of its 85.43
# teacher? In the main job's workspace (default ws/main-job-2, made by runs/main-job.sh,
# with replace v2 = `replace --epochs 8` from runs/mrpc-replace-epochs.sh), the same
# teacher; each line below is one variant of replace and/or finetune-successor, then
# evaluate's table. One seed (42): leads, not verdicts.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2}
cd "$WS"
# 1. more weight on the teacher's soft labels in replace (alpha 0.9 instead of 0.5)
run replace --epochs 8 --distill-weight 0.9
run finetune-successor --from "replace=$(newest replace)"
# 2. replace at the teacher's learning rate (1e-4 instead of 3e-4)
run replace --epochs 8 --learning-rate 1e-4
run finetune-successor --from "replace=$(newest replace)"
# 3. finetune-successor trains every parameter (embeddings, classifier) at 5e-5
run finetune-successor --from replace=v2 --train all --learning-rate 5e-5
COLUMNS=100 run evaluate --speed-batches 1
