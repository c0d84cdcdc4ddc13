#!/usr/bin/env bash
# Issue 32's int8 target on Banking77, judged on test accuracy (the task's score): the
# best combination of runs/banking77-smaller-seeds.sh (shared layers + a rank-128
# embedding, the longer fine-tuning, trimmed; seeds 42, 43, 44) exported to ONNX and int8
# ONNX; export scores the labelled test file with PyTorch, fp32 ONNX and int8 ONNX
# (onnx_int8_test_score in each manifest). EVALS: their evaluate versions (default
# "v16 v17 v18" in ws/banking77-smaller, made by `theseus evaluate --successor
# trim-vocab`). Then the table of every export scored on test: file sizes and test scores.
# The best combination of runs/banking77-smaller-target.sh (replace 8 epochs, a trimmed
# vocabulary with 3,000 reference tokens): EVALS="v34 v35 v36"
# (log runs/results/banking77-smaller-int8-target.log).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # run (it reads $TASK)
WS=${1:-ws/banking77-smaller} EVALS=${EVALS:-v16 v17 v18}
cd "$WS"
TASK=banking77
for ev in $EVALS; do
  run export --successor trim-vocab --from "evaluate=$ev" --format onnx,onnx-int8 \
    --int8-max-drop 2 --no-card-speed
done
python - "$TASK" <<'PY'
import json, pathlib, sys
rows = []
for d in sorted(pathlib.Path("artifacts", sys.argv[1], "export").glob("v*"),
                key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if "onnx_int8_test_score" in m["metrics"]:
        rows.append((d.name, m["info"]["model_artifact"], m["metrics"]))
print("| export | model | int8 MB | PyTorch test | int8 test | int8 dev |")
print("|---|---|---|---|---|---|")
for name, model, x in rows:
    print(f"| {name} | {model} | {x['onnx_int8_mb']:.2f} | {100 * x['pytorch_test_score']:.2f} "
          f"| {100 * x['onnx_int8_test_score']:.2f} | {100 * x['onnx_int8_score']:.2f} |")
PY
