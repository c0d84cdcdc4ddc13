#!/usr/bin/env bash
# Issue 8, second task: teacher, truncate, distill, Theseus (task loss, the paper) and
# Theseus + KD on real RTE (full training set, 2490 pairs) with the embedded model and the
# MRPC recipe (replace lr 3e-4, baselines 1e-4, α = 0.5, T = 2), seeds 42, 43, 44, then the
# method table. The linear scheduler reaches p = 1 at 65% of replace (fraction_to_one,
# as steps_to_one 300 of 460 on MRPC). Seed-major, resumable and idempotent: rerun it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.."
. .venv/bin/activate
WS=ws/rte-methods
[ -f "$WS/theseus.yaml" ] || theseus init "$WS" --recipe workspaces/embedded-2026-11 --task RTE --glue-dir ../shared/glue
cd "$WS"
version() {  # the replace version made with seed $1 and distill_weight $2
  python - "$1" "$2" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts/RTE/replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) \
            and m["params"]["distill_weight"] == float(sys.argv[2]):
        print(d.name); break
PY
}
SCHED=(--scheduler linear --scheduler-arg fraction_to_one=0.65)  # overrides steps_to_one
run finetune-teacher
for seed in 42 43 44; do
  run replace --seed $seed "${SCHED[@]}" --distill-weight 0
  run finetune-successor --seed $seed --distill-weight 0 --from "replace=$(version $seed 0)"
  run truncate --seed $seed
  run distill --seed $seed
  run replace --seed $seed "${SCHED[@]}" --distill-weight 0.5
  run finetune-successor --seed $seed --distill-weight 0.5 --from "replace=$(version $seed 0.5)"
done
run evaluate --speed-repeats 3
