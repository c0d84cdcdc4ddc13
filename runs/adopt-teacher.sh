#!/usr/bin/env bash
# Issue 18, "bring your own teacher" on real data: the teacher fine-tuned in one workspace
# (default: ws/wnut17 of runs/wnut17-main.sh) is exported and given as --teacher to a
# fresh workspace; finetune-teacher adopts it without training, and its dev score must
# equal the one the first workspace reported. With FULL=1, replace, finetune-successor,
# evaluate and export then run on it (a short replace and fine-tuning, 40 optimizer steps
# each: this checks that they run, not how well; tests/test_adopt_teacher.py does the
# same on a tiny model).
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
FIRST=${1:-ws/wnut17}
SECOND=${2:-ws/wnut17-adopted}
TASK=$(python -c "import yaml,sys; print(next(iter(yaml.safe_load(open('$FIRST/theseus.yaml'))['tasks'])))")
run() { echo "+ theseus $*"; theseus "$@"; }
run export -w "$FIRST" --successor finetune-teacher --format hf --no-card-speed
EXPORTED=$(ls -d "$FIRST"/artifacts/"$TASK"/export/v*/ | sort -V | tail -1)model
python - "$FIRST/theseus.yaml" "$SECOND" "$EXPORTED" <<'PY'
import subprocess, sys, yaml
first, second, exported = sys.argv[1:]
task_name, task = next(iter(yaml.safe_load(open(first))["tasks"].items()))
root = first.rsplit("/", 1)[0]
args = ["theseus", "init", second, "--teacher", exported, "--task", task_name]
for key, flag in (("train", "--train"), ("validation", "--validation"), ("test", "--test")):
    if task.get(key):
        args += [flag, f"{root}/{task[key]}"]
print("+", " ".join(args)); subprocess.run(args, check=True)
PY
run finetune-teacher -w "$SECOND"
python - "$FIRST" "$SECOND" "$TASK" <<'PY'
import json, sys
from pathlib import Path
first, second, task = sys.argv[1:]
def teacher(ws):
    d = sorted(Path(ws, "artifacts", task, "finetune-teacher").glob("v*"), key=lambda p: int(p.name[1:]))[-1]
    return json.loads((d / "manifest.json").read_text())
a, b = teacher(first), teacher(second)
print(f"first workspace's teacher dev score {a['metrics']['score']!r}, adopted {b['metrics']['score']!r}, "
      f"optimizer steps {b['info']['optimizer_steps']}")
assert a["metrics"]["score"] == b["metrics"]["score"], "the adopted teacher scores differently"
PY
[ "${FULL:-0}" = 1 ] || exit 0
run replace -w "$SECOND" --max-steps 40
run finetune-successor -w "$SECOND" --max-steps 40
run evaluate -w "$SECOND"
run export -w "$SECOND" --format hf,onnx --no-card-speed
