#!/usr/bin/env bash
# Issue 19, item 3: the paper's analyses re-run with theseus's own commands on the
# embedded 6 -> 3 MRPC setting, seeds 42, 43, 44, the paper's recipe (task loss only,
# --distill-weight 0), the same number of optimizer steps for every scheduler:
#   A. replacing rate (section 5.3, Table 6): constant p in {0.5, 0.7, 0.9}, linear
#      (curriculum) and anti-curriculum, each followed by finetune-successor;
#   B. which module matters (section 5.1, Table 5): after replace at a constant p = 0.5
#      (no successor fine-tuning), the teacher with one successor module at a time;
#   C. depth (section 5.4): 2 and 3 successor layers of 6, Theseus against truncation.
# B first (it needs only one replace per seed, so its 3-seed table comes first), then A
# and C seed by seed. On 2 CPU cores a replace takes about 10 minutes, the whole script
# about 5 hours. Resumable and idempotent: rerun it after an interruption (finished
# stages are up to date, an interrupted one resumes from its checkpoint).
#   [SEEDS="42 43 44"] [PARTS="B A C"] [EVALUATE=1] bash runs/paper-analyses-mrpc.sh [WORKSPACE]
# SEEDS and PARTS choose seeds and parts (more seeds: runs/paper-analyses-more-seeds.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
SEEDS=${SEEDS:-42 43 44}
PARTS=${PARTS:-B A C}
has() { [[ " $PARTS " == *" $1 "* ]]; }
cd "$(dirname "$0")/.." && . .venv/bin/activate
LATEST=$PWD/runs/latest_replace.py
WS=${1:-ws/paper-analyses}
[ -e "$WS/theseus.yaml" ] || theseus init "$WS" --recipe workspaces/embedded-2026-11 --glue-dir ../shared/glue
cd "$WS"
latest() { python "$LATEST" MRPC "$@"; }  # the newest replace version: seed $1, params $2
T="--distill-weight 0"
C05='{"scheduler": "constant", "schedulers": {"constant": {"p": 0.5}}}'
has B && for seed in $SEEDS; do  # B. one module at a time, over the constant p = 0.5 replace
  run replace --seed $seed $T --scheduler constant --scheduler-arg p=0.5
  v=$(latest $seed "$C05")
  for m in 1 2 3; do  # speed is not the point here: time one batch once
    run evaluate --successor replace --from "replace=$v" --modules $m \
        --speed-repeats 1 --speed-batches 1
  done
done
for seed in $SEEDS; do
  # A. schedulers
  has A && for rate in 0.5 0.7 0.9; do
    run replace --seed $seed $T --scheduler constant --scheduler-arg p=$rate
    v=$(latest $seed "{\"scheduler\": \"constant\", \"schedulers\": {\"constant\": {\"p\": $rate}}}")
    run finetune-successor --seed $seed $T --from "replace=$v"
  done
  if has A || has C; then  # the curriculum is A's and C's (3 of 6) Theseus row
    run replace --seed $seed $T --scheduler linear
    run finetune-successor --seed $seed $T --from "replace=$(latest $seed '{"scheduler": "linear", "distill_weight": 0.0, "successor_layers": null}')"
  fi
  # anti-curriculum: 1 - p_d with the curriculum's own b and k (section 5.3), which the
  # workspaces made before 2026-11-29 do not give it (they end its ramp at step 1000)
  if has A; then
    run replace --seed $seed $T --scheduler anti-curriculum --scheduler-arg steps_to_one=300
    run finetune-successor --seed $seed $T --from "replace=$(latest $seed '{"scheduler": "anti-curriculum", "schedulers": {"anti-curriculum": {"b": 0.3, "steps_to_one": 300}}, "distill_weight": 0.0, "successor_layers": null}')"
  fi
  # C. depth: 2 of 6 (3 of 6 is the linear row of A), against truncation at each depth
  if has C; then
    run replace --seed $seed $T --scheduler linear --successor-layers 2
    run finetune-successor --seed $seed $T --from "replace=$(latest $seed '{"successor_layers": 2}')"
    run truncate --seed $seed --successor-layers 2
    run truncate --seed $seed --successor-layers 3
  fi
done
if [ "${EVALUATE:-1}" = 1 ]; then  # the scores; speed is not the point
  run evaluate --speed-repeats 1 --speed-batches 1
fi
