#!/usr/bin/env bash
# Issue 19, item 2: the paper's scale. all-mpnet-base-v2 (MPNet, 12 layers, hidden 768,
# 109M parameters; ../shared/models/fetch-models.sh mpnet) compressed 12 -> 6 on real GLUE
# task $2 (MRPC, RTE, ...) in workspace $1:
#   1. teacher (the default recipe: 3 epochs at 5e-5);
#   2. a 1-seed grid sweep of replace's learning rate (the part of the recipe that may
#      differ from the 6 -> 3 one), its best value kept for every later replace;
#   3. per seed (42, 43, 44): Theseus + KD (the default recipe), truncate and distill at
#      7 epochs (the passes Theseus gets: replace 4 + finetune-successor 3);
#   4. per seed: Theseus with the task loss only (the paper's recipe);
#   5. evaluate (speed measured 3 times) and the method table.
# About 10 CPU hours on 2 cores for MRPC (an optimizer step of the 12-layer teacher is
# 6.1 s): seed-major, resumable and idempotent; rerun it in the next session and it goes
# on from the last checkpoint (finished stages are up to date).
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/mpnet-mrpc} TASK=${2:-MRPC}
MODEL=${THESEUS_MODELS_DIR:-$HOME/.cache/theseus-models}/all-mpnet-base-v2
[ -f "$MODEL/config.json" ] || { echo "no $MODEL: run ../shared/models/fetch-models.sh mpnet" >&2; exit 2; }
if [ ! -e "$WS/theseus.yaml" ]; then
  theseus init "$WS" --model "$MODEL" --task "$TASK" --glue-dir ../shared/glue
  sed -i -e '/^truncate:/,/^$/ s/^  epochs: 3 /  epochs: 7 /' \
         -e '/^distill:/,/^$/ s/^  epochs: 3 /  epochs: 7 /' "$WS/theseus.yaml"
fi
cd "$WS"
EVAL="evaluate --speed-repeats 3"
run finetune-teacher
run sweep replace --param learning_rate=5e-5,1e-4
LR=$(python - "$TASK" <<'PY'
import json, sys
from pathlib import Path
sweeps = sorted(Path("artifacts", sys.argv[1], "sweep").glob("v*"), key=lambda p: int(p.name[1:]))
print(json.loads((sweeps[-1] / "manifest.json").read_text())["info"]["best_params"]["learning_rate"])
PY
)
echo "replace learning rate from the sweep: $LR"
version() {  # the replace version with seed $1, distill_weight $2 and learning rate $LR
  python - "$1" "$2" "$TASK" "$LR" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts", sys.argv[3], "replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) \
            and m["params"]["distill_weight"] == float(sys.argv[2]) \
            and m["params"]["learning_rate"] == float(sys.argv[4]):
        print(d.name); break
PY
}
for seed in 42 43 44; do
  run replace --seed $seed --learning-rate "$LR"
  run finetune-successor --seed $seed --from "replace=$(version $seed 0.5)"
  run truncate --seed $seed
  run distill --seed $seed
done
for seed in 42 43 44; do  # Theseus with the task loss only (the paper's)
  run replace --seed $seed --learning-rate "$LR" --distill-weight 0
  run finetune-successor --seed $seed --distill-weight 0 --from "replace=$(version $seed 0)"
done
run $EVAL
