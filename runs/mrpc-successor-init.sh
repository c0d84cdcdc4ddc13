#!/usr/bin/env bash
# Issue 31 follow-up: does the successor's starting point lift the MRPC main job towards
# 98% of its 85.43 teacher? In the main job's workspace (default ws/main-job-2, made by
# runs/main-job.sh), the same teacher and every default of the main job but the
# successor builder: every-other (module i starts as a copy of predecessor layer 2i+1,
# DistilBERT-style) instead of first-n (layer i). One seed (42): a lead, not a verdict.
# Log: runs/results/mrpc-successor-init.log (its last line: an 8-epoch variant, stopped
# by hand once the first fell 3.2 points behind first-n).
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2}
cd "$WS"
# 1. every-other: layers 1, 3, 5 of the teacher
run replace --successor every-other
run finetune-successor --from "replace=$(newest replace)"
