#!/usr/bin/env bash
# Issue 31 probe: TinyBERT-style data augmentation (word replacement, teacher's soft
# labels) on the MRPC main job's teacher (85.43; 98% of it is 83.72), seed 42, by
# runs/mrpc-ceiling-probe.py --augment (its docstring has the rule and the loss). Run in
# the main job's workspace after runs/mrpc-replace-epochs.sh (replace/v2, 81.64).
# Log: runs/results/mrpc-augment-probe.log. Run nothing else beside it (docs/runtime.md).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2}
probe() { echo "+ python runs/mrpc-ceiling-probe.py $*"; python runs/mrpc-ceiling-probe.py \
  --workspace "$WS" "$@" 2>&1 | grep --line-buffered -v "Loading weights\|Warning"; }
# replace's successor fine-tuned with KD on the pairs and 4 word-replaced copies of each
probe --student replace/v2 --epochs 2 --augment 4 --evals-per-epoch 4
# the same with 8 copies of each pair (TinyBERT makes 20)
probe --student replace/v2 --epochs 2 --augment 8 --evals-per-epoch 4
