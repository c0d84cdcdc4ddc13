#!/usr/bin/env bash
# The README's main job on real MRPC with the embedded defaults, each command timed, in a
# fresh workspace (default ws/main-job; pass another path). Run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job}
[ -e "$WS" ] && { echo "$WS exists: pass a new workspace path" >&2; exit 2; }
nproc; uptime
total=$(date +%s)
theseus init "$WS" --glue-dir ../shared/glue
cd "$WS"
for cmd in "replace --scheduler linear" "finetune-successor" "evaluate" "export" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=120 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
echo "=== main job took $(( $(date +%s) - total )) s"
