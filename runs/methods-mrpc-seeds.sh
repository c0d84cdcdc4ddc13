#!/usr/bin/env bash
# Issue 8, step 3: every method at the learning rates the sweeps of
# runs/recipe-sweep-mrpc.sh chose (replace 3e-4, truncate and distill 1e-4;
# finetune-successor its default 2e-5), seeds 42, 43, 44, then the method table.
# Theseus + KD: replace and finetune-successor with --distill-weight 0.5 (T = 2).
# Seed-major, resumable and idempotent: rerun it after an interruption.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/../ws/mrpc-methods"
. ../../.venv/bin/activate
version() {  # the replace version made with seed $1 at learning rate 3e-4 and distill_weight $2
  python - "$1" "$2" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts/MRPC/replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) and m["params"]["learning_rate"] == 3e-4 \
            and m["params"]["distill_weight"] == float(sys.argv[2]):
        print(d.name); break
PY
}
for seed in 42 43 44; do
  run replace --seed $seed --learning-rate 3e-4
  run finetune-successor --seed $seed --from "replace=$(version $seed 0)"
  run truncate --seed $seed --learning-rate 1e-4
  run distill --seed $seed --learning-rate 1e-4
  run replace --seed $seed --learning-rate 3e-4 --distill-weight 0.5
  run finetune-successor --seed $seed --distill-weight 0.5 --from "replace=$(version $seed 0.5)"
done
run evaluate --speed-repeats 3
