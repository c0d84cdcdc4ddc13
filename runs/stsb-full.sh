#!/usr/bin/env bash
# STS-B on its full training set (5749 pairs), 2 epochs per stage, embedded defaults
# otherwise; then the GLUE table again, with test predictions.
set -euo pipefail
cd "$(dirname "$0")/../ws" && . ../.venv/bin/activate
for cmd in "finetune-teacher --task STS-B --epochs 2" "replace --task STS-B --epochs 2" "finetune-successor --task STS-B --epochs 2" \
           "evaluate --glue-all --predict-test" "export --task STS-B" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=160 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
