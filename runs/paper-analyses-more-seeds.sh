#!/usr/bin/env bash
# Issue 19: seeds 45 and 46 for the 6 -> 3 analyses (claims 3, 4 and 5), to pool with
# seeds 42-44 in runs/results/paper-analyses-6to3.log (their workspace did not survive
# the session). In a fresh workspace:
#   1. the teacher again, the embedded recipe (the first one scored 80.59);
#   2. a reproducibility check: seed 42's part B again (replace at constant p = 0.5, then
#      evaluate --modules 1, 2, 3). Pooling with the old seeds is honest only if these
#      repeat the old log's scores; runs/paper-analyses-pool.py compares them;
#   3. seeds 45 and 46: parts B and C (module and depth), then part A (schedulers), then
#      evaluate.
# About 2 hours on 2 CPU cores; resumable and idempotent like runs/paper-analyses-mrpc.sh.
#   bash runs/paper-analyses-more-seeds.sh [WORKSPACE]   (default ws/paper-analyses)
set -euo pipefail
cd "$(dirname "$0")/.."
WS=${1:-ws/paper-analyses}
. .venv/bin/activate
[ -e "$WS/theseus.yaml" ] || theseus init "$WS" --recipe workspaces/embedded-2026-11 --glue-dir ../shared/glue
(cd "$WS" && echo "+ theseus finetune-teacher" &&
 /usr/bin/time -f "wall %e s" theseus finetune-teacher)
SEEDS=42 PARTS=B EVALUATE=0 bash runs/paper-analyses-mrpc.sh "$WS"
SEEDS="45 46" PARTS="B C" EVALUATE=0 bash runs/paper-analyses-mrpc.sh "$WS"
SEEDS="45 46" PARTS=A bash runs/paper-analyses-mrpc.sh "$WS"
