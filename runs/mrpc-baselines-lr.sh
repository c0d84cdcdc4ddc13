#!/usr/bin/env bash
# Issue 32 on MRPC: PKD-Skip and LayerDrop at the learning rate `theseus init` writes for
# the embedded model (1e-4, the teacher's rule at hidden 384), seeds 42, 43, 44. The rows
# of runs/mrpc-smaller.sh ran at 5e-5: its workspace's theseus.yaml (copied from the main
# job's, older than the pkd and layerdrop stages) had no section for them, so they took
# the stages' built-in 5e-5. Same workspace (default ws/mrpc-baselines), same budget (7
# epochs, early stopping). Idempotent: rerun it after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run (it reads $TASK)
WS=${1:-ws/mrpc-baselines} SEEDS=${SEEDS:-42 43 44}
cd "$WS"
nproc; uptime
TASK=MRPC
for seed in $SEEDS; do
  run pkd --seed "$seed" --learning-rate 1e-4
  run layerdrop --seed "$seed" --learning-rate 1e-4
done
COLUMNS=100 run evaluate --speed-batches 2
python ../../runs/size-table.py . MRPC | tee ../../runs/results/mrpc-baselines-lr-table.md
