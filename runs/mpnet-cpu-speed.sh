#!/usr/bin/env bash
# The CPU speed-up of the 12 -> 6 MPNet successor (issue 19's tables were trained on a GPU,
# whose speed says nothing about this CPU). Speed depends on the architecture, not on the
# weights, so this workspace trains each model for one optimizer step only: the teacher
# (all-mpnet-base-v2, 12 layers, with a 2-class head) and `truncate` (its bottom 6 layers:
# the architecture of the Theseus successor, first-n, one layer per module). Then
# `theseus evaluate --successor truncate` times both on MRPC dev batches (64 pairs each,
# 8 batches, median of 5 passes), the same measurement as every speed-up in README.
# Run with the other jobs of the machine paused (kill -STOP), as evaluate's timing was.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/mpnet-speed}
MODEL=${THESEUS_MODELS_DIR:-$HOME/.cache/theseus-models}/all-mpnet-base-v2
[ -e "$WS/theseus.yaml" ] || theseus init "$WS" --model "$MODEL" --task MRPC --glue-dir ../shared/glue
cd "$WS"
theseus finetune-teacher --max-steps 1
theseus truncate --max-steps 1 --successor-layers 6
[ "${2:-}" = --train-only ] || theseus evaluate --successor truncate --speed-repeats 5
