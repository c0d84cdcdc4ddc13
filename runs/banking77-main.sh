#!/usr/bin/env bash
# Issue 18: the main-job commands on Banking77 (the user's CSV, 77 intents, a held-out
# 10% validation split, test.csv scored), embedded model 6 -> 3 layers, default recipe
# (Theseus + KD), then the baselines and the task-loss-only Theseus, seeds 42, 43, 44.
# Seed-major, resumable and idempotent (stages resume from checkpoints, finished ones are
# up to date): rerun it after an interruption or in the next session.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/banking77}
if [ ! -e "$WS/theseus.yaml" ]; then
  theseus init "$WS" --task banking77 --train ../shared/data/banking77/train.csv \
      --test ../shared/data/banking77/test.csv --text-column text --label-column category
fi
cd "$WS"
run() { echo "+ theseus $*"; /usr/bin/time -f "wall %e s" theseus "$@"; }
run replace --scheduler linear
run finetune-successor
run evaluate
run export --format hf,onnx,onnx-int8
run benchmark
for seed in 42 43 44; do
  run replace --seed $seed
  run finetune-successor --seed $seed
  run truncate --seed $seed
  run distill --seed $seed
  run replace --seed $seed --distill-weight 0 --force  # Theseus, task loss only (the paper's)
  run finetune-successor --seed $seed --distill-weight 0
done
run evaluate --speed-repeats 3
