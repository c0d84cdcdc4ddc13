#!/usr/bin/env bash
# int8 ONNX size of the MRPC smaller-model rows (seed 42), in the workspace of
# runs/mrpc-smaller.sh (default ws/mrpc-baselines): each evaluated successor named below
# (and the teacher) exported to ONNX and int8 ONNX, parity checks as always.
# - The first four with the defaults (the int8 dev score at most 1 point below fp32).
# - The rows whose int8 export the default refused (the default Theseus successor: 1.15
#   points below fp32; narrow-ffn + emb + trimming: 1.47), and the rest, with
#   --int8-max-drop 2, so the size table can show their int8 file and score (the drop is
#   in each export's manifest and in the table), and --no-card-speed (their latencies
#   come from runs/mrpc-smaller-latency.sh on an idle machine).
# Then `theseus evaluate` (evaluations reused) makes the method table again with each
# exported model's int8 MB.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/mrpc-baselines}
cd "$WS"
evaluation_of() {  # the newest evaluation of a successor artifact (MRPC/stage/vN)
  python - "$1" <<'PY'
import json, pathlib, sys
for d in sorted(pathlib.Path("artifacts/MRPC/evaluate").glob("v*"), key=lambda p: -int(p.name[1:])):
    if json.loads((d / "manifest.json").read_text())["info"]["successor_artifact"] == sys.argv[1]:
        print(d.name); break
PY
}
export_one() {  # successor artifact, then export options
  local successor=$1; shift
  local ev stage
  ev=$(evaluation_of "$successor") stage=$(cut -d/ -f2 <<<"$successor")
  echo "+ theseus export --successor $stage --from evaluate=$ev --format onnx,onnx-int8 $*  # $successor"
  theseus export --successor "$stage" --from "evaluate=$ev" --format onnx,onnx-int8 "$@" 2>&1 \
    | grep -E "exported|up to date|error|onnx-int8" || true
}
for successor in MRPC/finetune-successor/v2 MRPC/finetune-successor/v5 MRPC/trim-vocab/v6 \
                 MRPC/pkd/v1; do
  export_one "$successor"
done
for successor in MRPC/finetune-successor/v1 MRPC/trim-vocab/v1 MRPC/trim-vocab/v4 \
                 MRPC/finetune-successor/v3 MRPC/finetune-successor/v4 MRPC/trim-vocab/v5 \
                 MRPC/truncate/v1 MRPC/distill/v1 MRPC/layerdrop/v1; do
  export_one "$successor" --int8-max-drop 2 --no-card-speed
done
echo "+ theseus export --successor finetune-teacher --format onnx,onnx-int8 --int8-max-drop 2 --no-card-speed"
theseus export --successor finetune-teacher --format onnx,onnx-int8 --int8-max-drop 2 \
  --no-card-speed 2>&1 | grep -E "exported|up to date|error|onnx-int8" || true
python - <<'PY'
import json, pathlib
print("| model | int8 MB | fp32 ONNX dev score | int8 dev score | export |")
print("|---|---|---|---|---|")
for d in sorted(pathlib.Path("artifacts/MRPC/export").glob("v*"), key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    x = m["metrics"]
    if "onnx_int8_mb" in x:
        print(f"| {m['info']['model_artifact']} | {x['onnx_int8_mb']:.1f} | "
              f"{100 * x['onnx_score']:.2f} | {100 * x['onnx_int8_score']:.2f} | {d.name} |")
PY
