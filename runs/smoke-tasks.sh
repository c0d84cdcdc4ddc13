#!/usr/bin/env bash
# The same commands on RTE, SST-2, STS-B and CoLA in the main job's workspace (real GLUE
# data, embedded model), with training cut to the first 512 examples and 2 epochs per
# stage so that all four fit in about a quarter of an hour on the CPU; dev and test sets
# are complete. Then the GLUE table over every task of the workspace, with test predictions.
set -euo pipefail
cd "$(dirname "$0")/../ws" && . ../.venv/bin/activate
tasks="--task RTE --task SST-2 --task STS-B --task CoLA"
quick="--max-train-samples 512 --epochs 2"
for cmd in "finetune-teacher $tasks $quick" \
           "replace $tasks --scheduler linear --scheduler-arg steps_to_one=24 $quick" \
           "finetune-successor $tasks $quick" "evaluate --glue-all --predict-test" \
           "export $tasks" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=160 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
