"""Claim 2's CPU table (docs/results/paper-claims.md) from the published manifests of runs/mpnet-mrpc-cpu.sh's
workspace: per method (and successor depth) the MRPC dev score of every seed, the median,
mean ± std (n; `theseus_cli.workspace.seeds.stats`, as glue-table computes them) and
retention of the median against the teacher.

    python runs/mpnet-cpu-table.py ws/mpnet-mrpc-cpu [TASK]

Each published version's manifest holds its dev score (`metrics.score`, the best
evaluation), its seed (`config.runtime.seed`) and its depth (`info.layers`).
`finetune-successor` is Theseus + KD when its distill weight is > 0, else Theseus with the
task loss; a row per replacing-rate schedule of the `replace` it started from (the recipe's
linear curriculum unnamed; runs/mpnet-schedulers-cpu.sh adds the others); `replace` is
the first phase of either and is not a row.
The teacher is the best published `finetune-teacher` version (this workspace has one);
a seed run twice counts once, with its newest version.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

from theseus_cli.workspace.seeds import stats  # the median, mean and std glue-table uses

ws = Path(sys.argv[1])
task = sys.argv[2] if len(sys.argv) > 2 else "MRPC"
root = ws / "artifacts" / task


def manifests(stage):
    for p in sorted(root.glob(f"{stage}/v*/manifest.json"), key=lambda p: int(p.parent.name[1:])):
        yield json.loads(p.read_text())


def scheduler_label(successor_manifest) -> str:
    """The replacing-rate schedule of the `replace` version a `finetune-successor` version
    started from: "" for the recipe's linear curriculum (b 0.3, p = 1 at step 300), else
    e.g. ", constant p = 0.5" or ", anti-curriculum (b 0.3, p = 0 from step 300)"."""
    version = successor_manifest["inputs"]["replace"]["version"]
    sched = json.loads((root / "replace" / version / "manifest.json").read_text())["info"]["scheduler"]
    name, params = sched["name"], sched["params"]
    if name == "constant":
        return f", constant p = {params['p']}"
    if name == "linear" and params.get("steps_to_one") == 300 and params.get("b") == 0.3:
        return ""
    end = "p = 0" if name == "anti-curriculum" else "p = 1"
    return f", {name} (b {params.get('b')}, {end} from step {params.get('steps_to_one')})"


teacher = max(m["metrics"]["score"] for m in manifests("finetune-teacher")) * 100
rows = defaultdict(dict)  # (method, layers) -> {seed: score}
for stage in ("finetune-successor", "truncate", "distill"):
    for m in manifests(stage):
        name = {"truncate": "truncate", "distill": "distill (vanilla KD)"}.get(stage) or (
            ("Theseus + KD" if m["params"].get("distill_weight") else "Theseus, task loss")
            + scheduler_label(m))
        rows[(name, m["info"]["layers"])][m["config"]["runtime"]["seed"]] = \
            100 * m["metrics"]["score"]

seeds = sorted({s for r in rows.values() for s in r})
print(f"| {task} dev, teacher {teacher:.2f} | layers | "
      + " | ".join(f"seed {s}" for s in seeds) + " | median | mean ± std (n) | of the teacher |")
print("|---|---|" + "---|" * len(seeds) + "---|---|---|")
for (name, layers), by_seed in sorted(rows.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
    st = stats(list(by_seed.values()))
    std = f"{st['std']:.2f}" if st["n"] > 1 else "—"
    cells = " | ".join(f"{by_seed[s]:.2f}" if s in by_seed else "—" for s in seeds)
    print(f"| {name} | {layers} | {cells} | {st['median']:.2f} | {st['mean']:.2f} ± {std} "
          f"({st['n']}) | {100 * st['median'] / teacher:.1f}% |")
