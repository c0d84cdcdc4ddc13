#!/usr/bin/env bash
# The README's main job on real MRPC with the embedded defaults, each command timed, in a
# fresh workspace (default ws/main-job; pass another path). Run it on an idle machine.
# The same commands as the README's set-up-and-main-job line.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job}
[ -e "$WS" ] && { echo "$WS exists: pass a new workspace path" >&2; exit 2; }
nproc; uptime
total=$(date +%s)
theseus init "$WS" --glue-dir ../shared/glue
cd "$WS"
for cmd in "replace --scheduler linear" "finetune-successor" "evaluate" \
           "export --format hf,onnx,onnx-int8" "benchmark" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=120 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
echo "=== main job took $(( $(date +%s) - total )) s"
