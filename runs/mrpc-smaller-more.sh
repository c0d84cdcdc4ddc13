#!/usr/bin/env bash
# Issue 32 on MRPC, the rows runs/mrpc-smaller.sh leaves out, in its workspace (default
# ws/mrpc-baselines), seeds 42, 43, 44, today's defaults otherwise:
# - shared layers: replace --successor shared (ALBERT-style, one set of layer weights);
# - combinations: narrow FFN (half the neurons) + a rank-64 word embedding, then the
#   vocabulary trimmed (trim-vocab); and ROSITA's recipe (compose: half the heads, half
#   the FFN neurons, every map at a third of its rank) + a rank-64 embedding + trimming.
# ROWS="shared compose" leaves out the narrow-FFN rows (default: all three).
# Seed-major and idempotent: rerun it after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run, version_of (they read $TASK)
WS=${1:-ws/mrpc-baselines} SEEDS=${SEEDS:-42 43 44} ROWS=${ROWS:-shared narrow compose}
cd "$WS"
TASK=MRPC
for seed in $SEEDS; do
  if [[ " $ROWS " == *" shared "* ]]; then
    r=$(version_of replace --seed "$seed" --successor shared)
    run finetune-successor --seed "$seed" --from "replace=$r"
  fi
  if [[ " $ROWS " == *" narrow "* ]]; then
    r=$(version_of replace --seed "$seed" --successor narrow-ffn --embedding-rank 64)
    f=$(version_of finetune-successor --seed "$seed" --from "replace=$r")
    run trim-vocab --seed "$seed" --from "finetune-successor=$f"
  fi
  if [[ " $ROWS " == *" compose "* ]]; then
    r=$(version_of replace --seed "$seed" --successor compose --embedding-rank 64)
    f=$(version_of finetune-successor --seed "$seed" --from "replace=$r")
    run trim-vocab --seed "$seed" --from "finetune-successor=$f"
  fi
done
COLUMNS=100 run evaluate --speed-batches 2
