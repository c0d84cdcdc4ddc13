#!/usr/bin/env bash
# Issue 32 on MRPC, in the main job's setting (the embedded 6-layer model to 3 layers),
# seeds 42, 43, 44 (the median, as the paper), every stage with today's defaults:
# - the default Theseus successor, and the same with its vocabulary trimmed (trim-vocab);
# - Theseus with a compressed word embedding (replace --embedding-rank 64), and that with
#   its vocabulary trimmed too;
# - the baselines: truncate, distill, BERT-PKD (PKD-Skip) and LayerDrop.
# The teacher is the main job's (85.43 dev; ws/main-job-2, made by runs/main-job.sh),
# copied into a fresh workspace (default ws/mrpc-baselines) so that the table holds only
# these methods. Seed-major and idempotent: rerun it after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run, version_of (they read $TASK)
SRC=${SRC:-ws/main-job-2} WS=${1:-ws/mrpc-baselines} SEEDS=${SEEDS:-42 43 44}
if [ ! -e "$WS" ]; then
  mkdir -p "$WS/artifacts/MRPC"
  cp "$SRC/theseus.yaml" "$WS/"
  cp -a "$SRC/artifacts/MRPC/finetune-teacher" "$WS/artifacts/MRPC/"
fi
cd "$WS"
nproc; uptime
TASK=MRPC
for seed in $SEEDS; do
  r=$(version_of replace --seed "$seed")
  f=$(version_of finetune-successor --seed "$seed" --from "replace=$r")
  run trim-vocab --seed "$seed" --from "finetune-successor=$f"
  run truncate --seed "$seed"
  run distill --seed "$seed"
  run pkd --seed "$seed"
  run layerdrop --seed "$seed"
  r=$(version_of replace --seed "$seed" --embedding-rank 64)
  f=$(version_of finetune-successor --seed "$seed" --from "replace=$r")
  run trim-vocab --seed "$seed" --from "finetune-successor=$f"
done
COLUMNS=100 run evaluate --speed-batches 2
