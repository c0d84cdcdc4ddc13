"""Print a task's size/quality table (issue 32) from the newest glue-table artifact of a
workspace: per method its parameters, the word embedding's share of them, how many times
fewer than the teacher's, the score's median over seeds, mean ± std (n) and retention.

    python runs/size-table.py WORKSPACE TASK            (ws/mrpc-baselines MRPC)
    python runs/size-table.py WORKSPACE TASK --test accuracy   (a test metric's median)
"""

import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("workspace")
parser.add_argument("task")
parser.add_argument("--test", help="report this test metric's median instead of the score")
args = parser.parse_args()
versions = sorted([*Path(args.workspace, "artifacts", args.task, "glue-table").glob("v*"),
                   *Path(args.workspace, "artifacts", "GLUE", "glue-table").glob("v*")],
                  key=lambda p: (p.stat().st_mtime, int(p.name[1:])))
rows = json.loads((versions[-1] / "tables.json").read_text())[args.task]
teacher = rows[0]


def stat(row):
    return row["metrics"][f"test_{args.test}"] if args.test else row["score"]


print(f"<!-- {versions[-1]} -->")
print("| method | parameters | embedding | × fewer | score (median) | mean ± std (n) | "
      "retention |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    total, emb, s = row.get("parameters"), row.get("embedding"), stat(row)
    if s["median"] is None:
        continue
    size = "—" if total is None else f"{total / 1e6:.2f}M"
    share = "—" if not total or emb is None else f"{100 * emb / total:.0f}%"
    fewer = "—" if not total else f"{teacher['parameters'] / total:.2f}×"
    spread = (f"{100 * s['mean']:.2f} ± {100 * (s['std'] or 0):.2f} ({s['n']})"
              if s.get("n") else "—")
    retention = ("—" if total is None else
                 f"{100 * s['median'] / stat(teacher)['median']:.1f}%")
    print(f"| {row['method']} | {size} | {share} | {fewer} | {100 * s['median']:.2f} | "
          f"{spread} | {retention} |")
