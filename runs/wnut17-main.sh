#!/usr/bin/env bash
# Issue 18: the main-job commands on WNUT-17 (CoNLL token files, BIO tags over 6 entity
# types, its own dev file, test scored; entity F1), embedded model 6 -> 3 layers, default recipe
# (Theseus + KD), then the baselines and the task-loss-only Theseus, seeds 42, 43, 44.
# Seed-major, resumable and idempotent (stages resume from checkpoints, finished ones are
# up to date): rerun it after an interruption or in the next session.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/wnut17}
if [ ! -e "$WS/theseus.yaml" ]; then
  theseus init "$WS" --task wnut17 --train ../shared/data/wnut17/train.conll \
      --validation ../shared/data/wnut17/dev.conll --test ../shared/data/wnut17/test.conll
fi
cd "$WS"
run() { echo "+ theseus $*"; /usr/bin/time -f "wall %e s" theseus "$@"; }
version() {  # the replace version made with seed $1 and distill_weight $2
  python - "$1" "$2" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts/wnut17/replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) \
            and m["params"]["distill_weight"] == float(sys.argv[2]):
        print(d.name); break
PY
}
run replace --scheduler linear
run finetune-successor --from "replace=$(version 42 0.5)"
run evaluate
run export --format hf,onnx,onnx-int8
run benchmark
for seed in 42 43 44; do
  run replace --seed $seed
  run finetune-successor --seed $seed --from "replace=$(version $seed 0.5)"
  run truncate --seed $seed
  run distill --seed $seed
  run replace --seed $seed --distill-weight 0  # Theseus with the task loss only (the paper's)
  run finetune-successor --seed $seed --distill-weight 0 --from "replace=$(version $seed 0)"
done
run evaluate --speed-repeats 3
