#!/usr/bin/env bash
# The MRPC main job with runtime.precision: bf16 (Accelerate's autocast on the CPU),
# every other setting the set-up command's default, seed 42, in a fresh workspace
# (default ws/main-job-bf16): does bf16 keep the scores, and how much faster is it on a
# CPU that runs bf16 natively (AMX)? Log: runs/results/main-job-bf16.log.
# Compare with runs/main-job.sh (fp32; log runs/results/main-job-2.log). Idle machine.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/main-job-bf16}
[ -e "$WS" ] && { echo "$WS exists: pass a new workspace path" >&2; exit 2; }
nproc; uptime; lscpu | grep -E "^Model name"
echo "cpu flags: $(grep -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
total=$(date +%s)
theseus init "$WS" --glue-dir ../shared/glue
cd "$WS"
sed -i "s/^  precision: 'no' /  precision: bf16 /" theseus.yaml
grep -q '^  precision: bf16 ' theseus.yaml
for cmd in "replace --scheduler linear" "finetune-successor" "evaluate" "status"; do
  echo "=== theseus $cmd"; start=$(date +%s)
  COLUMNS=120 theseus $cmd
  echo "=== theseus $cmd took $(( $(date +%s) - start )) s"
done
echo "=== main job took $(( $(date +%s) - total )) s"
