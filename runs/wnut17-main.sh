#!/usr/bin/env bash
# Issue 18: the main-job commands, the baselines and the task-loss Theseus on WNUT-17 (CoNLL token files, BIO tags over 6 entity
# types, its own dev file, test scored; entity F1), 3 seeds: runs/own-task-main.sh on a new workspace.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/wnut17}
if [ ! -e "$WS/theseus.yaml" ]; then
  theseus init "$WS" --task wnut17 --train ../shared/data/wnut17/train.conll \
      --validation ../shared/data/wnut17/dev.conll --test ../shared/data/wnut17/test.conll
fi
exec bash runs/own-task-main.sh "$WS" wnut17
