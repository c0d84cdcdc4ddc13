#!/usr/bin/env bash
# GPU check of --precision fp16/bf16 and --compile (BENCHMARKS.md): benchmarks/precision_cpu.py
# on CUDA through theseus's runtime, on the machine the `device` tool lends (carry: .dev,
# made by runs/gpu-carry.sh).   device run: bash runs/gpu-precision.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. runs/gpu-setup.sh
nvidia-smi -L || true
$PY benchmarks/precision_cpu.py --device cuda --precisions no,fp16,bf16 --compile \
    --models tiny,embedded --batch 32 --seq 128 --steps 20 --warmup 5
