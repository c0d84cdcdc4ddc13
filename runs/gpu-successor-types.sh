#!/usr/bin/env bash
# Issue 9: first-n, head-pruned, narrow-ffn and low-rank successors of comparable parameter
# count (about half the predecessor's layer parameters) on real MRPC with the embedded model
# and its default recipe, seeds 42, 43, 44, trained on the GPU machine the `device` tool lends.
#
#   first-n      n = 3 modules, whole layers                         5.32 M layer parameters
#   head-pruned  n = 3, 9 of 12 heads per layer (Michel et al.)      4.88 M
#   narrow-ffn   n = 6, 384 of 1536 feed-forward neurons per layer   5.34 M
#   low-rank     n = 6, every linear map at rank 128 (1/3 of 384)    5.34 M
#
# Carried in .dev/ (ignored by git, made by runs/gpu-carry.sh): the wheels that machine lacks,
# GLUE MRPC, and the embedded model's weights in fp16 (its 64 MiB transfer limit); they are cast
# back to fp32 there, and every model trains and is scored in fp32. One teacher (seed 42) is
# trained, then each type runs in its own copy of that workspace, the four side by side on the
# one GPU. Each workspace is evaluated twice: on the GPU (scores; speed-up at batch 64 on the
# GPU) and on the CPU with 2 threads per process, pinned to its own 2 cores (speed-up as on the
# 2-core machines the README's other numbers come from). Tables and logs go to $OUT.
# Resumable: a rerun reuses every finished artifact (workspaces under .dev/ws).
#   device run: bash runs/gpu-successor-types.sh       (carry: .dev)
#   here, quick check on CPU: SKIP_INSTALL=1 QUICK=1 PY=.venv/bin/python bash runs/gpu-successor-types.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/theseus-gpu-out}; LOGS=/tmp/theseus-gpu-logs; mkdir -p "$OUT" "$LOGS"
trap 'tar czf "$OUT/results.tgz" -C "$LOGS" .' EXIT  # at most 8 files come back: one archive
ROOT=$PWD; WS=${WS:-$ROOT/.dev/ws}; SEEDS=${SEEDS:-42 43 44}; TYPES=${TYPES:-first-n head-pruned narrow-ffn low-rank}
. runs/gpu-setup.sh
theseus() { local t=$SECONDS; echo "+ theseus $*"; $PY -m theseus_cli "$@"; echo "wall $((SECONDS - t)) s"; }
pin() { if command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
QUICK_ARGS=(); [ -n "${QUICK:-}" ] && QUICK_ARGS=(--max-train-samples 64 --max-eval-samples 64 --epochs 1)

mkdir -p "$WS"
[ -f "$WS/base/theseus.yaml" ] || theseus init "$WS/base" --recipe workspaces/embedded-2026-11 --glue-dir .dev/glue
(cd "$WS/base" && theseus finetune-teacher "${QUICK_ARGS[@]}") > "$LOGS/teacher.log" 2>&1

declare -A ARGS=(
  [first-n]="--successor first-n --successor-layers 3"
  [head-pruned]="--successor head-pruned --successor-layers 3 --successor-arg head_fraction=0.75"
  [narrow-ffn]="--successor narrow-ffn --successor-layers 6 --successor-arg ffn_fraction=0.25"
  [low-rank]="--successor low-rank --successor-layers 6 --successor-arg rank_fraction=0.3333333333333333"
)
for type in $TYPES; do
  [ -d "$WS/$type" ] || cp -a "$WS/base" "$WS/$type"
  (
    cd "$WS/$type"
    for seed in $SEEDS; do
      # shellcheck disable=SC2086
      theseus replace --seed $seed ${ARGS[$type]} "${QUICK_ARGS[@]}"
      theseus finetune-successor --seed $seed "${QUICK_ARGS[@]}"
    done
    theseus evaluate --speed-repeats 5
  ) > "$LOGS/$type.log" 2>&1 &
done
wait
cores=0
for type in $TYPES; do
  [ -d "$WS/$type-cpu" ] || cp -a "$WS/$type" "$WS/$type-cpu"
  (cd "$WS/$type-cpu" && OMP_NUM_THREADS=2 pin $cores,$((cores + 1)) \
     $PY -m theseus_cli evaluate --device cpu --force --speed-repeats 5) > "$LOGS/$type-cpu.log" 2>&1 &
  cores=$((cores + 2))
done
wait
for ws in $TYPES; do
  for where in "$ws" "$ws-cpu"; do
    latest=$(ls -d "$WS/$where"/artifacts/GLUE/glue-table/v* | sort -V | tail -1)
    cp "$latest/tables.md" "$LOGS/$where.tables.md"
  done
done
grep -H "wall\|^+ \|rror" "$LOGS"/*.log | tail -n 80; cat "$LOGS"/*.tables.md
