#!/usr/bin/env bash
# Issue 31 probe: three recipes the product does not offer, on the MRPC main job's teacher
# (85.43; 98% of it is 83.72), seed 42, by runs/mrpc-ceiling-probe.py (its docstring has
# the loss). Run in the main job's workspace after runs/mrpc-replace-epochs.sh (replace/v2,
# 81.64). Log: runs/results/mrpc-ceiling-probe.log. Training takes 273, 358 and 542 s (the log) on the idle 2-core
# machine; run nothing else beside it (docs/runtime.md).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2}
probe() { echo "+ python runs/mrpc-ceiling-probe.py $*"; python runs/mrpc-ceiling-probe.py \
  --workspace "$WS" "$@" 2>&1 | grep --line-buffered -v "Loading weights\|Warning"; }
# 1. replace's successor fine-tuned with KD + hidden-state distillation (PKD/TinyBERT-style)
probe --student replace/v2 --epochs 3 --beta 1.0
# 2. replace's successor fine-tuned with KD on twice the pairs (sentences swapped)
probe --student replace/v2 --epochs 2 --swap --evals-per-epoch 2
# 3. no module replacing: the teacher's bottom 3 layers distilled with KD + hidden states
probe --student first-n --epochs 6 --beta 1.0 --lr 1e-4
