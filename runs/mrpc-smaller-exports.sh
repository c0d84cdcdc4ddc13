#!/usr/bin/env bash
# int8 ONNX size and latency of the MRPC smaller-model rows (seed 42), in the workspace of
# runs/mrpc-smaller.sh (default ws/mrpc-baselines): each evaluated successor named below
# exported to ONNX and int8 ONNX (parity checks as always); the model card's speed table
# times the PyTorch fp32 teacher and each format at batch 1 and 32 of 128 tokens.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/mrpc-baselines}
cd "$WS"
for successor in MRPC/finetune-successor/v1 MRPC/finetune-successor/v2 MRPC/trim-vocab/v5 \
                 MRPC/finetune-successor/v5 MRPC/trim-vocab/v6 MRPC/pkd/v1; do
  ev=$(python - "$successor" <<'PY'
import json, pathlib, sys
for d in sorted(pathlib.Path("artifacts/MRPC/evaluate").glob("v*"), key=lambda p: -int(p.name[1:])):
    if json.loads((d / "manifest.json").read_text())["info"]["successor_artifact"] == sys.argv[1]:
        print(d.name); break
PY
)
  stage=$(cut -d/ -f2 <<<"$successor")
  echo "+ theseus export --successor $stage --from evaluate=$ev --format onnx,onnx-int8  # $successor"
  theseus export --successor "$stage" --from "evaluate=$ev" --format onnx,onnx-int8 2>&1 | grep -E "exported|up to date|error" || true
done
python - <<'PY'
import json, pathlib
print("| successor | method | int8 MB | int8 dev score | teacher fp32 / int8 size | b1×s128 int8 ms | teacher ms | speed-up |")
print("|---|---|---|---|---|---|---|---|")
teacher_mb = sum(f.stat().st_size for f in pathlib.Path("artifacts/MRPC/finetune-teacher/v1/model").glob("*.safetensors")) / 1e6
for d in sorted(pathlib.Path("artifacts/MRPC/export").glob("v*"), key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    ev = json.loads((pathlib.Path("artifacts/MRPC/evaluate") / m["inputs"]["evaluate"]["version"] / "manifest.json").read_text())
    rows = {(r["model"], r["format"]): r for r in (m["info"].get("speed") or {}).get("rows", [])}
    t = rows.get(("teacher", "pytorch fp32"), {}).get("p50_ms", {}).get("b1×s128")
    q = rows.get(("successor", "onnx-int8"), {}).get("p50_ms", {}).get("b1×s128")
    mb = m["metrics"].get("onnx_int8_mb")
    print(f"| {ev['info']['successor_artifact']} | {ev['info']['method']} | {mb:.1f} | "
          f"{100 * m['metrics'].get('onnx_int8_score', float('nan')):.2f} | {teacher_mb / mb:.1f}× | "
          f"{q:.2f} | {t:.2f} | {t / q:.2f}× |")
PY
