#!/usr/bin/env bash
# WNUT-17: Theseus + KD with the token-level KL over the labelled tokens only (each word's
# first sub-token, where the cross-entropy is; before, every real token, also the
# continuation sub-tokens and [CLS]/[SEP] that the teacher was never trained on), seeds
# 42, 43, 44, today's defaults otherwise. The teacher and the truncate rows are those of
# runs/wnut17-main.sh (ws/wnut17: 56.26 dev entity F1; truncate 51.65 dev median),
# copied into a fresh workspace (default ws/wnut17-token-kd) so that the new replace and
# finetune-successor runs are not taken for the old ones (same params). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run, version_of (they read $TASK)
SRC=${SRC:-ws/wnut17} WS=${1:-ws/wnut17-token-kd} SEEDS=${SEEDS:-42 43 44}
if [ ! -e "$WS" ]; then
  mkdir -p "$WS/artifacts/wnut17"
  cp "$SRC/theseus.yaml" "$WS/"
  cp -a "$SRC/artifacts/wnut17/finetune-teacher" "$SRC/artifacts/wnut17/truncate" \
    "$WS/artifacts/wnut17/"
fi
cd "$WS"
nproc; uptime
TASK=wnut17
for seed in $SEEDS; do
  r=$(version_of replace --seed "$seed")
  run finetune-successor --seed "$seed" --from "replace=$r"
done
COLUMNS=100 run evaluate --speed-batches 2
cd ../.. && python runs/readme-table.py "$WS" wnut17 entity_f1 \
  | tee runs/results/wnut17-token-kd-table.md
