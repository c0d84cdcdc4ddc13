#!/usr/bin/env bash
# The main-job commands on a user's task in workspace $1 (task $2, already initialised by
# the caller with theseus init's data flags only: runs/banking77-main.sh,
# runs/wnut17-main.sh), embedded model 6 -> 3 layers, every setting theseus init's default
# (since 2026-12-06: the teacher trains until its dev score stops improving, at most 10
# epochs at the learning rate its size gets, 1e-4; truncate and distill at most 7 epochs,
# the passes Theseus gets, with early stopping too).
#
# PARTS (default "main seeds taskloss") picks what runs:
#   main      finetune-teacher, replace, finetune-successor, evaluate, export, benchmark
#   seeds     per seed of SEEDS (default 42 43 44): Theseus + KD and the BASELINES
#             (default "truncate distill")
#   taskloss  per seed: Theseus with the task loss only (the paper's)
# Seed-major, resumable and idempotent (stages resume from checkpoints, finished ones are
# up to date): rerun it after an interruption. The recipe before 2026-12-06 (the teacher
# 10 epochs at 1e-4 and the baselines 7 epochs, set by hand) made the tables of
# runs/results/banking77-main.log and wnut17-main.log.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
WS=$1 TASK=$2
PARTS=${PARTS:-main seeds taskloss}
SEEDS=${SEEDS:-42 43 44}
BASELINES=${BASELINES:-truncate distill}
cd "$WS"
EVAL="evaluate --speed-repeats 3"  # one setting for both calls: a rerun finds them up to date
version() {  # the replace version made with seed $1 and distill_weight $2
  python - "$1" "$2" "$TASK" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts", sys.argv[3], "replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) \
            and m["params"]["distill_weight"] == float(sys.argv[2]):
        print(d.name); break
PY
}
has() { [[ " $PARTS " == *" $1 "* ]]; }
if has main; then
  run finetune-teacher
  run replace --scheduler linear
  run finetune-successor --from "replace=$(version 42 0.5)"
  run $EVAL
  run export --format hf,onnx,onnx-int8
  run benchmark
fi
if has seeds; then
  for seed in $SEEDS; do
    run replace --seed $seed
    run finetune-successor --seed $seed --from "replace=$(version $seed 0.5)"
    for baseline in $BASELINES; do run $baseline --seed $seed; done
  done
fi
if has taskloss; then
  for seed in $SEEDS; do  # Theseus with the task loss only (the paper's)
    run replace --seed $seed --distill-weight 0
    run finetune-successor --seed $seed --distill-weight 0 --from "replace=$(version $seed 0)"
  done
fi
run $EVAL
