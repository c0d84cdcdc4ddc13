#!/usr/bin/env bash
# Latency of the MRPC smaller-model rows at batch 1 x 128 tokens, on an idle machine: the
# PyTorch fp32 teacher and every exported model of runs/mrpc-smaller-exports.sh (PyTorch
# fp32, ONNX fp32, int8 ONNX), 3 interleaved rounds (median of the rounds' p50s, spread
# beside it), each model in a fresh process. Run it with nothing else on the machine.
# EXPORTS=v5,v6 limits it to those export versions (models of one architecture run at one
# speed: truncate, distill, PKD and LayerDrop are the default Theseus successor's shape).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
. runs/campaign.sh  # newest_int8_exports (they read $TASK)
WS=${1:-ws/mrpc-baselines}
cd "$WS"
TASK=MRPC
exports=${EXPORTS:-$(newest_int8_exports)}
nproc; uptime
echo "+ theseus benchmark --exports $exports --batch-sizes 1 --seq-lengths 128 --dev-batches 0"
COLUMNS=100 theseus benchmark --exports "$exports" --batch-sizes 1 --seq-lengths 128 \
  --dev-batches 0 --rounds 3
uptime
