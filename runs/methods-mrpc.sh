#!/usr/bin/env bash
# Issue 8: teacher, truncate, distill, Theseus (task loss, as the paper) and Theseus + KD
# on real MRPC with the embedded model, seeds 42, 43, 44, then the method table.
# Resumable and idempotent: rerun the same script after an interruption; finished runs
# are up to date (same fingerprint), an interrupted one resumes from its last checkpoint.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.."
. .venv/bin/activate
WS=ws/mrpc-methods
GLUE=${THESEUS_GLUE_DIR:-$(cd ../shared/glue && pwd)}
[ -f "$WS/theseus.yaml" ] || theseus init "$WS" --recipe workspaces/embedded-2026-11 --glue-dir "$GLUE"
cd "$WS"
# the replace version made with this seed and distill_weight (for --from)
version() {
  python - "$1" "$2" <<'PY'
import json, sys
from pathlib import Path
seed, alpha = int(sys.argv[1]), float(sys.argv[2])
for d in sorted(Path("artifacts/MRPC/replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == seed and m["params"]["distill_weight"] == alpha:
        print(d.name); break
PY
}
[ "${1:-}" = teacher ] && { run finetune-teacher; exit 0; }
run finetune-teacher
for seed in 42 43 44; do      # seed-major: one full row of every method first
  run truncate --seed $seed
  run distill --seed $seed
  run replace --seed $seed                                  # Theseus, task loss (the paper)
  run finetune-successor --seed $seed --from "replace=$(version $seed 0)"
  run replace --seed $seed --distill-weight 0.5             # Theseus + KD
  run finetune-successor --seed $seed --distill-weight 0.5 --from "replace=$(version $seed 0.5)"
  run evaluate --speed-repeats 3
done
