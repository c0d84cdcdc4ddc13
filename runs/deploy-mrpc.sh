#!/usr/bin/env bash
# Issue 10 on the real MRPC successor of the main job (workspace of runs/main-job.sh,
# default ws/main-job-2): export it as hf, ONNX and int8 ONNX (parity in the manifest),
# export the teacher as ONNX too, then `theseus benchmark` in one run. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-2}
cd "$WS"
nproc; uptime
for cmd in "export --format hf,onnx,onnx-int8" \
           "export --successor finetune-teacher --format onnx,onnx-int8" \
           "benchmark --force"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=160 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
