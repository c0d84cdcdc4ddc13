#!/usr/bin/env bash
# Issue 19, claim 3 (section 5.3) again at 12 -> 6 on MRPC, on the CPU, with the stronger
# teacher of runs/mpnet-mrpc-cpu.sh and a curriculum that reaches p = 1.
# The first 12 -> 6 scheduler table (GPU, 3-epoch teacher) ramped the curriculum to p = 1
# only at step 1000 of 460 replace steps, so it ended replace at p = 0.62. Here every row
# has the recipe's 460 replace steps (lr 5e-5) and 345 finetune-successor steps (lr 2e-5),
# the task loss only (the paper's), seeds 42, 43, 44:
#   constant p in {0.5, 0.7, 0.9}; anti-curriculum 1 - p_d with the curriculum's own
#   b = 0.3 and ramp (steps_to_one 300). The linear curriculum row (b = 0.3, p = 1 at
#   step 300) is step 3 of runs/mpnet-mrpc-cpu.sh, in the same workspace.
# Run it in the workspace of runs/mpnet-mrpc-cpu.sh (it needs that script's teacher):
#   bash runs/mpnet-schedulers-cpu.sh [WORKSPACE]      (default ws/mpnet-mrpc-cpu)
# About 55 CPU-minutes per row and seed on 2 cores (12 rows: about 11 hours): seed-major,
# resumable and idempotent (a checkpoint every 10 minutes); rerun it and it goes on.
# The table: python runs/mpnet-cpu-table.py WORKSPACE (a row per scheduler).
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.." && . .venv/bin/activate
LATEST=$PWD/runs/latest_replace.py
WS=${1:-ws/mpnet-mrpc-cpu}
[ -e "$WS/theseus.yaml" ] || { echo "no $WS: run runs/mpnet-mrpc-cpu.sh first" >&2; exit 2; }
cd "$WS"
latest() { python "$LATEST" MRPC "$@"; }  # the newest replace version: seed $1, params $2
T='--distill-weight 0'
for seed in 42 43 44; do
  for rate in 0.5 0.7 0.9; do
    run replace --seed $seed $T --scheduler constant --scheduler-arg p=$rate
    run finetune-successor --seed $seed $T --from "replace=$(latest $seed "{\"scheduler\": \"constant\", \"schedulers\": {\"constant\": {\"p\": $rate}}, \"distill_weight\": 0.0, \"successor_layers\": 6}")"
  done
  run replace --seed $seed $T --scheduler anti-curriculum --scheduler-arg steps_to_one=300
  run finetune-successor --seed $seed $T --from "replace=$(latest $seed '{"scheduler": "anti-curriculum", "schedulers": {"anti-curriculum": {"b": 0.3, "steps_to_one": 300}}, "distill_weight": 0.0, "successor_layers": 6}')"
done
run evaluate --speed-repeats 1 --speed-batches 1
