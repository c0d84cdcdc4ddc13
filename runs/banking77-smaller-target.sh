#!/usr/bin/env bash
# Issue 32's Banking77 target (>= 7.5x fewer parameters keeping >= 98% of the teacher's
# test accuracy), after runs/banking77-smaller-seeds.sh left the best combination 0.13
# points short (97.9%, 8.28x). Two changes, each decided before any test score was read:
# 1. Spend the size budget on vocabulary: 7.5x fewer than the teacher's 22,742,861
#    parameters allows 3,032,381, 286k more than the trimmed best combination (2,746,189),
#    room for about 2,200 more rank-128 embedding rows. trim-vocab --reference with the
#    3,000 most frequent tokens of a public reference text (the other GLUE tasks' training
#    sets, runs/reference-text.py) keeps 1,878 more tokens (6,151: 7.62x fewer) and leaves
#    0.43% of dev and test tokens outside the vocabulary instead of 0.59% and 0.62%
#    (trim-vocab's report). Applied to the
#    three seeds' best-combination models as they are.
# 2. A longer replace (--epochs 8, early stopping as always): the shared rank-128 replace
#    had its best dev score at its last (4th) epoch on all three seeds. Tried on seed 42;
#    seeds 43 and 44 follow only if its validation score beats (1)'s at seed 42 (chosen on
#    dev, not on test).
# 3. MORE_SEEDS="45 46": more seeds of the chosen combination (the target was met by one
#    test example on the median of 3; log runs/results/banking77-smaller-target-5.log).
# Then evaluate (test accuracy through --predict-test, as the other rows) and the table.
# Idempotent: rerun it after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run, version_of, score_of (they read $TASK)
WS=${1:-ws/banking77-smaller}
[ -f "$WS/reference-glue.txt" ] || python runs/reference-text.py ../shared/glue "$WS/reference-glue.txt"
cd "$WS"
nproc; uptime
TASK=banking77
REF=(--reference reference-glue.txt --reference-tokens 3000)
best_combination() {  # seed [replace options]: shared + rank-128 + longer fine-tuning
  local seed=$1 r f; shift
  r=$(version_of replace --seed "$seed" --successor shared --embedding-rank 128 "$@")
  f=$(version_of finetune-successor --seed "$seed" --from "replace=$r" --epochs 10 \
        --learning-rate 1e-4)
  version_of trim-vocab --seed "$seed" --from "finetune-successor=$f" "${REF[@]}"
}
declare -A now
for seed in 42 43 44; do now[$seed]=$(best_combination "$seed"); done
t=$(best_combination 42 --epochs 8)
s_now=$(score_of trim-vocab "${now[42]}") s_long=$(score_of trim-vocab "$t")
echo "seed 42 validation score, trimmed with the reference: replace 4 epochs $s_now," \
     "8 epochs $s_long"
if python -c "import sys; sys.exit(float(sys.argv[2]) <= float(sys.argv[1]))" "$s_now" "$s_long"; then
  for seed in 43 44 ${MORE_SEEDS:-}; do best_combination "$seed" --epochs 8; done
fi
COLUMNS=100 run evaluate --speed-batches 2
python ../../runs/size-table.py . banking77 --test accuracy \
  | tee ../../runs/results/banking77-smaller-table.md
