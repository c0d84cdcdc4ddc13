#!/usr/bin/env bash
# trim-vocab's settings on the MRPC successor of seed 42 (ws/mrpc-baselines, made by
# runs/mrpc-smaller.sh): the default (training tokens, specials, characters), without
# characters, and with the 5,000 most frequent tokens of a reference text (the other GLUE
# tasks' training sets, runs/reference-text.py). Prints each version's vocabulary, the
# share of dev tokens outside it and the dev score.
set -euo pipefail
cd "$(dirname "$0")/.." && . .venv/bin/activate
WS=${1:-ws/mrpc-baselines}
[ -f "$WS/reference-glue.txt" ] || python runs/reference-text.py ../shared/glue "$WS/reference-glue.txt"
cd "$WS"
f=$(python - <<'PY'
import json, pathlib
for d in sorted(pathlib.Path("artifacts/MRPC/finetune-successor").glob("v*"), key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == 42 and not m["info"]["method"].count(","):
        print(d.name); break
PY
)
for args in "" "--no-keep-characters" "--reference reference-glue.txt --reference-tokens 5000"; do
  echo "+ theseus trim-vocab --seed 42 --from finetune-successor=$f $args"
  theseus trim-vocab --seed 42 --from "finetune-successor=$f" $args > /dev/null
done
python - <<'PY'
import json, pathlib
print("| trim-vocab settings | vocabulary | dev tokens outside | dev [UNK] | dev score |")
print("|---|---|---|---|---|")
for d in sorted(pathlib.Path("artifacts/MRPC/trim-vocab").glob("v*"), key=lambda p: int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    info, p = m["info"], m["params"]
    if "emb r=" in info["method"] or m["config"]["runtime"]["seed"] != 42:
        continue
    how = ("reference " + str(p["reference_tokens"]) if p["reference"] else
           "characters" if p["keep_characters"] else "no characters")
    s = info["token_shares"]["dev"]
    print(f"| {how} ({d.name}) | {info['vocab_after']:,} | {100 * s['outside']:.2f}% | "
          f"{100 * s['unknown']:.2f}% | {100 * m['metrics']['score']:.2f} |")
PY
