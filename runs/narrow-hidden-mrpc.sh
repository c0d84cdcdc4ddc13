#!/usr/bin/env bash
# Issue 9: the narrow-hidden successor type on real MRPC with the embedded model and the
# default recipe (replace lr 3e-4, α = 0.5 in replace and finetune-successor, p = 1 at step
# 300), 6 modules of width 224 (7 of 12 heads, 896 of 1536 neurons: 4.66 M layer
# parameters), seeds 42, 43, 44, in the workspace of runs/methods-mrpc-seeds.sh (the same
# CPU teacher as its Theseus rows), then `theseus evaluate`. Resumable and idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/../ws/mrpc-methods"
. ../../.venv/bin/activate
version() {  # the narrow-hidden replace version made with seed $1
  python - "$1" <<'PY'
import json, sys
from pathlib import Path
for d in sorted(Path("artifacts/MRPC/replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == int(sys.argv[1]) and m["params"]["successor"] == "narrow-hidden":
        print(d.name); break
PY
}
for seed in 42 43 44; do
  run replace --seed $seed --learning-rate 3e-4 --distill-weight 0.5 --successor narrow-hidden \
      --successor-layers 6 --successor-arg hidden_fraction=0.6
  run finetune-successor --seed $seed --distill-weight 0.5 --from "replace=$(version $seed)"
done
run evaluate --speed-repeats 3
