#!/usr/bin/env bash
# Issue 8, step 1 of the default recipe: on real MRPC with the embedded model, the
# learning rate of the truncate baseline and of module replacing (1 seed; the CPU budget
# of one session). Reuses the teacher of ws/mrpc-methods. Resumable: rerun it; finished
# trials are skipped, an interrupted one resumes from its checkpoint.
set -euo pipefail
. "$(dirname "$0")/lib.sh"  # run, newest
cd "$(dirname "$0")/.."
. .venv/bin/activate
WS=ws/mrpc-methods
GLUE=${THESEUS_GLUE_DIR:-$(cd ../shared/glue && pwd)}
[ -f "$WS/theseus.yaml" ] || theseus init "$WS" --recipe workspaces/embedded-2026-11 --glue-dir "$GLUE"
cd "$WS"
run finetune-teacher
run sweep truncate --param learning_rate=1e-4,3e-4
run sweep replace --param learning_rate=1e-4,3e-4
