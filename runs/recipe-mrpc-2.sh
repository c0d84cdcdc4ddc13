#!/usr/bin/env bash
# Issue 8, step 2: after runs/recipe-sweep-mrpc.sh: fine-tune the best replace successor
# (by the replace sweep) at two learning rates, run the distill baseline at the learning
# rate the truncate sweep chose, and print the method table (seed 42). Idempotent.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/../ws/mrpc-methods"
. ../../.venv/bin/activate
best() {  # the best trial's version of a stage, from the latest sweep of that stage
  python - "$1" <<'PY'
import json, sys
from pathlib import Path
stage = sys.argv[1]
for d in sorted(Path("artifacts/MRPC/sweep").glob("v*"), key=lambda p: -int(p.name[1:])):
    b = json.loads((d / "best.json").read_text())
    m = json.loads((d / "manifest.json").read_text())
    if m["params"]["stage"] == stage:
        print(b["artifacts"][0].split("/")[-1]); break
PY
}
REPLACE=$(best replace); TRUNCATE=$(best truncate)
LR=$(python -c "import json;print(json.load(open('artifacts/MRPC/truncate/$TRUNCATE/manifest.json'))['params']['learning_rate'])")
echo "best replace: $REPLACE; best truncate: $TRUNCATE (learning rate $LR)"
run finetune-successor --from "replace=$REPLACE" --learning-rate 2e-5
run finetune-successor --from "replace=$REPLACE" --learning-rate 1e-4
run distill --learning-rate "$LR"
run evaluate --speed-repeats 3
