#!/usr/bin/env bash
# int8 ONNX size and latency of every evaluated model of one seed in a size/quality
# workspace (issue 32): each evaluated successor of seed SEED (default 42), and the
# teacher, exported to ONNX and int8 ONNX with the usual parity checks, --int8-max-drop 2
# (the drop is recorded in each export's manifest and shown by the tables) and no card
# speed table; then `theseus benchmark` times the teacher and every export at batch 1 x
# 128 tokens in 3 interleaved rounds (run it on an idle machine), and `theseus evaluate`
# (evaluations reused) makes the method table again with each model's int8 MB.
#     runs/smaller-exports.sh ws/banking77-smaller banking77 [SEED]
# MODELS="banking77/finetune-successor/v1 banking77/trim-vocab/v3" exports only those.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # newest_int8_exports (they read $TASK)
WS=$1 TASK=$2 SEED=${3:-42}
cd "$WS"
evaluations=$(python - "$TASK" "$SEED" "${MODELS:-}" <<'PY'
import json, pathlib, sys
task, seed, only = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
newest = {}  # successor artifact -> (its newest evaluation, its stage)
for d in sorted(pathlib.Path("artifacts", task, "evaluate").glob("v*"), key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    label = m["info"].get("successor_artifact", "")
    successor = pathlib.Path("artifacts", *label.split("/"), "manifest.json")
    if label.count("/") != 2 or m["params"].get("modules") or not successor.is_file():
        continue
    if only and label not in only:
        continue
    if json.loads(successor.read_text()).get("config", {}).get("runtime", {}).get("seed") == seed:
        newest[label] = (d.name, label.split("/")[1])
print(" ".join(f"{stage}={ev}" for ev, stage in newest.values()))
PY
)
for item in $evaluations; do
  stage=${item%%=*} ev=${item#*=}
  echo "+ theseus export --successor $stage --from evaluate=$ev --format onnx,onnx-int8 --int8-max-drop 2 --no-card-speed"
  theseus export --successor "$stage" --from "evaluate=$ev" --format onnx,onnx-int8 \
    --int8-max-drop 2 --no-card-speed 2>&1 | grep -E "exported|up to date|error|onnx-int8" || true
done
echo "+ theseus export --successor finetune-teacher --format onnx,onnx-int8 --int8-max-drop 2 --no-card-speed"
theseus export --successor finetune-teacher --format onnx,onnx-int8 --int8-max-drop 2 \
  --no-card-speed 2>&1 | grep -E "exported|up to date|error|onnx-int8" || true
exports=$(newest_int8_exports)
nproc; uptime
echo "+ theseus benchmark --exports $exports --batch-sizes 1 --seq-lengths 128 --dev-batches 0"
COLUMNS=100 theseus benchmark --exports "$exports" --batch-sizes 1 --seq-lengths 128 \
  --dev-batches 0 --rounds 3
uptime
COLUMNS=100 theseus evaluate --speed-batches 2 > /dev/null
