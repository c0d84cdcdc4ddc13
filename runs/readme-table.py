"""Print a task's method table (the newest glue-table artifact of a workspace) as the
Markdown the docs' results pages show.

    python runs/readme-table.py WORKSPACE TASK METRIC            (ws/wnut17 wnut17 entity_f1)
    python runs/readme-table.py WORKSPACE TASK METRIC... --test  (ws/banking77 banking77
                                                                  accuracy macro_f1 --test)

Default: per method the median over seeds of the dev and test METRIC, the dev mean ± std
(n seeds), retention (dev, as evaluate computes it) and speed-up. With --test: per method
and per METRIC the test median and the test mean ± std (n), the retention of the first
METRIC's test median against the teacher's, and the speed-up.
"""

import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("workspace")
parser.add_argument("task")
parser.add_argument("metrics", nargs="+")
parser.add_argument("--test", action="store_true", help="test-split columns only")
args = parser.parse_args()
# a workspace of the user's own task files its tables under the task's name (GLUE/ before)
versions = sorted([*Path(args.workspace, "artifacts", args.task, "glue-table").glob("v*"),
                   *Path(args.workspace, "artifacts", "GLUE", "glue-table").glob("v*")],
                  key=lambda p: (p.stat().st_mtime, int(p.name[1:])))
rows = json.loads((versions[-1] / "tables.json").read_text())[args.task]


def pct(v):
    return "—" if v is None else f"{100 * v:.2f}"


def spread(stats):
    return (f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f} ({stats['n']})"
            if stats.get("mean") is not None else "—")


def speed(r):
    s = r["speedup"].get("median")
    return "—" if s is None else f"{s:.2f}×"


if args.test:
    first = f"test_{args.metrics[0]}"
    teacher = next(r for r in rows if r["method"].startswith("teacher"))["metrics"][first]["median"]
    head = [c for m in args.metrics for c in (f"test {m}, median", f"test {m}, mean ± std (n)")]
    print(f"| method | layers | {' | '.join(head)} | retention (test {args.metrics[0]}) | speed-up |")
    print("|---|---|" + "---|" * len(head) + "---|---|")
    for r in rows:
        cells = []
        for m in args.metrics:
            stats = r["metrics"].get(f"test_{m}", {})
            cells += [pct(stats.get("median")), spread(stats)]
        value = r["metrics"].get(first, {}).get("median")
        ret = "—" if value is None or r["retention"].get("median") is None \
            else f"{100 * value / teacher:.1f}%"
        print(f"| {r['method']} | {r['layers'] or '—'} | {' | '.join(cells)} | {ret} | "
              f"{speed(r)} |")
else:
    metric = args.metrics[0]
    print(f"| method | layers | dev {metric} | test {metric} | dev mean ± std (n) | "
          "retention (dev) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        dev, test = r["metrics"][metric], r["metrics"].get(f"test_{metric}", {})
        ret = r["retention"].get("median")
        print(f"| {r['method']} | {r['layers'] or '—'} | {pct(dev.get('median'))} | "
              f"{pct(test.get('median'))} | {spread(dev)} | "
              f"{'—' if ret is None else f'{ret:.1f}%'} | {speed(r)} |")
recipes = [(r["method"], r["recipe"]) for r in rows if r.get("recipe", r["method"]) != r["method"]]
if recipes:
    print("\nRecipes:\n" + "\n".join(f"- {m}: {rec}" for m, rec in recipes))
print(f"\n(from {versions[-1]}/tables.json)")
