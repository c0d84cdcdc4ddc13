"""Print a task's method table (the newest glue-table artifact of a workspace) as the
Markdown the README shows: per method the median over seeds of the dev and test primary
metric, the dev mean ± std (n seeds), retention and speed-up.

Usage: python runs/readme-table.py WORKSPACE TASK METRIC   (e.g. ws/wnut17 wnut17 entity_f1)
"""

import json
import sys
from pathlib import Path

ws, task, metric = sys.argv[1:4]
versions = sorted(Path(ws, "artifacts", "GLUE", "glue-table").glob("v*"),
                  key=lambda p: int(p.name[1:]))
rows = json.loads((versions[-1] / "tables.json").read_text())[task]


def pct(v):
    return "—" if v is None else f"{100 * v:.2f}"


print(f"| method | layers | dev {metric} | test {metric} | dev mean ± std (n) | "
      "retention (dev) | speed-up |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    dev, test = r["metrics"][metric], r["metrics"].get(f"test_{metric}", {})
    spread = (f"{100 * dev['mean']:.2f} ± {100 * dev['std']:.2f} ({dev['n']})"
              if dev.get("mean") is not None else "—")
    ret, speed = r["retention"].get("median"), r["speedup"].get("median")
    print(f"| {r['method']} | {r['layers'] or '—'} | {pct(dev.get('median'))} | "
          f"{pct(test.get('median'))} | {spread} | "
          f"{'—' if ret is None else f'{ret:.1f}%'} | "
          f"{'—' if speed is None else f'{speed:.2f}×'} |")
print(f"\n(from {versions[-1]}/tables.json)")
