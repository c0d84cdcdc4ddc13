#!/usr/bin/env bash
# Issue 19 item 2 on the `device` tool's GPU machine, which reaches no package index and
# takes at most 64 MiB per call. The 438 MB all-mpnet-base-v2 travels gzipped in 7 parts
# over 7 calls made back to back (a machine stays warm, with its files, 30 s after a
# call), then one call trains everything (runs/device_campaign.py). Prepare here with
#   bash runs/device-mpnet.sh prepare          # .whl/ and .xfer1 ... .xfer7; once:
#                                              # printf '/.whl/\n/.xfer*/\n' >> .git/info/exclude
# then, on the device, in 7 calls:
#   bash runs/device-mpnet.sh setup            # carry .whl .xfer1: wheels, versions, dry run
#   bash runs/device-mpnet.sh part N           # carry .xferN, N = 2..6
#   bash runs/device-mpnet.sh main SECONDS [ARGS]   # carry .xfer7: sha256 check, the
#                                              # campaign (ARGS: device_campaign.py's)
# The weights are the original fp32 file, byte for byte (its sha256 is checked there).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${THESEUS_MODELS_DIR:-$HOME/.cache/theseus-models}/all-mpnet-base-v2
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 XDG_CACHE_HOME=/tmp/cache
X=/tmp/xfer  # what the calls brought, kept while the machine stays warm
stash() { mkdir -p $X && cp -r .xfer"$1"/. $X/ && ls -la $X; }
case $1 in
prepare)
  # what the device's image lacks (it has torch, transformers, accelerate, onnx...), as
  # wheels for its Python 3.12, and theseus itself from this checkout
  . .venv/bin/activate && rm -rf .whl && mkdir .whl
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -d .whl datasets==5.2.0 dill==0.4.1 \
      multiprocess==0.70.19 platformdirs==4.14.8 optuna==5.0.0 alembic==1.20.1 \
      sqlalchemy==2.1.9 colorlog==6.12.0 mako==1.4.3
  python -m pip wheel -q --no-deps seqeval==1.2.2 -w .whl
  python -m pip wheel -q --no-deps --no-build-isolation . -w .whl
  rm -rf .xfer[1-7] && mkdir -p .xfer1/glue .xfer2/glue .xfer3/model
  [ -s /tmp/mpnet.safetensors.gz ] || gzip -1 -c "$MODEL/model.safetensors" > /tmp/mpnet.safetensors.gz
  # part 1 is smaller: the wheels travel with it
  head -c $((50 << 20)) /tmp/mpnet.safetensors.gz > .xfer1/part1
  tail -c +$(((50 << 20) + 1)) /tmp/mpnet.safetensors.gz > /tmp/mpnet-rest.gz
  split -n 6 -d -a 1 /tmp/mpnet-rest.gz /tmp/mpnet-part
  for i in 0 1 2 3 4 5; do mkdir -p .xfer$((i + 2)); mv /tmp/mpnet-part$i .xfer$((i + 2))/part$((i + 2)); done
  cp -r ../shared/glue/MRPC ../shared/glue/RTE .xfer2/glue/ && chmod -R u+w .xfer2/glue
  cp -r ../shared/glue/STS-B ../shared/glue/CoLA .xfer1/glue/ && chmod -R u+w .xfer1/glue
  (cd "$MODEL" && cp config.json tokenizer.json tokenizer_config.json vocab.txt \
      special_tokens_map.json "$OLDPWD/.xfer3/model/")
  (cd "$MODEL" && sha256sum model.safetensors) > .xfer3/model/SHA256SUMS
  du -sh .whl .xfer*; cat .xfer3/model/SHA256SUMS ;;
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
  nvidia-smi -L; nproc; free -g | head -2; df -h /tmp | tail -1
  python3 -c "import torch, transformers, datasets, accelerate, theseus_cli; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'accelerate', accelerate.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.is_bf16_supported())"
  stash 1
  [ "${2:-}" = --no-dry-run ] || python3 runs/device_campaign.py --tiny --tasks MRPC --seeds 42 --root /tmp/dry \
      --out "$OUT/dry" --start-cutoff 60 --deadline 75 ;;
part)
  stash "$2" ;;
main)
  stash 7
  [ "$(ls $X/part* | wc -l)" = 7 ] && [ -d $X/glue ] && [ -d $X/model ] && [ -d /tmp/site ] \
      || { echo "parts missing: a fresh machine"; exit 3; }
  cat $X/part1 $X/part2 $X/part3 $X/part4 $X/part5 $X/part6 $X/part7 | python3 -c \
      'import gzip, shutil, sys; shutil.copyfileobj(gzip.GzipFile(fileobj=sys.stdin.buffer), sys.stdout.buffer, 1 << 24)' \
      > $X/model/model.safetensors
  (cd $X/model && sha256sum -c SHA256SUMS)
  python3 runs/device_campaign.py --model $X/model --glue $X/glue --root /tmp/camp \
      --out "$OUT" --deadline "$2" --start-cutoff $(($2 - 120)) "${@:3}" 2>&1 | tee "$OUT/campaign.log" ;;
*) echo "usage: $0 prepare | setup | part N | main SECONDS" >&2; exit 2 ;;
esac
