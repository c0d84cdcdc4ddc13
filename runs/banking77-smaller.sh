#!/usr/bin/env bash
# Issue 32 on Banking77 (test accuracy; the user's CSV, 77 intents, a held-out 10%
# validation split): the size/quality rows beside the default Theseus successor, seeds 42,
# 43, 44, today's defaults otherwise. The teacher is the one of runs/banking77-main.sh
# (92.60 test accuracy; ws/banking77), copied into a fresh workspace (default
# ws/banking77-smaller) with its data settings. Target (issue 32): a successor with
# >= 7.5x fewer parameters than the teacher keeping >= 98% of its test accuracy.
# Rows: Theseus 3L (+ trimmed vocabulary); ROSITA's recipe (compose) + a rank-64 embedding
# + trimming; truncate; PKD-Skip; LayerDrop; shared layers + a rank-64 embedding + trimming.
# Seed-major and idempotent: rerun it after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run, version_of (they read $TASK)
SRC=${SRC:-ws/banking77} WS=${1:-ws/banking77-smaller} SEEDS=${SEEDS:-42 43 44}
if [ ! -e "$WS" ]; then
  mkdir -p "$WS/artifacts/banking77"
  cp "$SRC/theseus.yaml" "$WS/"
  cp -a "$SRC/artifacts/banking77/finetune-teacher" "$WS/artifacts/banking77/"
fi
cd "$WS"
nproc; uptime
TASK=banking77
theseline() {  # replace with "$@", finetune-successor, trim-vocab; one seed
  local seed=$1; shift
  local r f
  r=$(version_of replace --seed "$seed" "$@")
  f=$(version_of finetune-successor --seed "$seed" --from "replace=$r")
  run trim-vocab --seed "$seed" --from "finetune-successor=$f"
}
for seed in $SEEDS; do  # the rows the issue asks for first, then shared layers
  theseline "$seed"
  theseline "$seed" --successor compose --embedding-rank 64
  run truncate --seed "$seed"
  run pkd --seed "$seed"
  run layerdrop --seed "$seed"
  theseline "$seed" --successor shared --embedding-rank 64
done
COLUMNS=100 run evaluate --speed-batches 2
python ../../runs/size-table.py . banking77 --test accuracy | tee ../../runs/results/banking77-smaller-table.md
