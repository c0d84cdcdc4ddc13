#!/usr/bin/env bash
# The README's main job on real MRPC, each stage timed.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
theseus init ws --glue-dir ../shared/glue
cd ws
for cmd in "replace --scheduler linear" "finetune-successor" "evaluate" "export" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=120 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
