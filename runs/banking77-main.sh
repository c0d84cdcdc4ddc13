#!/usr/bin/env bash
# Issue 18: the main-job commands, the baselines and the task-loss Theseus on Banking77 (the user's CSV, 77 intents, a held-out
# 10% validation split, test.csv scored), 3 seeds: runs/own-task-main.sh on a new workspace.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/banking77}
if [ ! -e "$WS/theseus.yaml" ]; then
  theseus init "$WS" --task banking77 --train ../shared/data/banking77/train.csv \
      --test ../shared/data/banking77/test.csv --text-column text --label-column category
fi
exec bash runs/own-task-main.sh "$WS" banking77
