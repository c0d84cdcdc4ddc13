"""The paper's Table 5 (section 5.1) from one workspace: every `theseus evaluate
--successor replace --modules i` run, grouped by module, the median over the seeds of
the replace runs they read (with mean ± std (n)) and the median change from the teacher.

    python runs/module-table.py ws/paper-analyses [TASK]   (default MRPC)
"""

import json
import statistics
import sys
from pathlib import Path

ws, task = Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "MRPC"
art = ws / "artifacts" / task
rows: dict[str, dict[int, dict]] = {}
for man in sorted((art / "evaluate").glob("v*/manifest.json")):
    doc = json.loads(man.read_text())
    modules = doc["params"].get("modules")
    if doc["params"].get("successor") != "replace" or not modules:
        continue
    replace = json.loads((art / "replace" / doc["inputs"]["replace"]["version"] /
                          "manifest.json").read_text())
    rows.setdefault(modules, {})[replace["config"]["runtime"]["seed"]] = doc["metrics"]

print("| module replaced | dev score, median | mean ± std (n) | Δ to the teacher, median |")
print("|---|---|---|---|")
teachers = set()
for modules in sorted(rows, key=lambda m: [int(x) for x in m.split(",")]):
    per = rows[modules]
    scores = [100 * m["successor_score"] for m in per.values()]
    teachers |= {round(100 * m["teacher_score"], 2) for m in per.values()}
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    delta = statistics.median(100 * (m["successor_score"] - m["teacher_score"])
                              for m in per.values())
    print(f"| {modules} | {statistics.median(scores):.2f} | {statistics.mean(scores):.2f} ± "
          f"{sd:.2f} ({len(scores)}) | {delta:+.2f} |")
print(f"\n(teacher: {', '.join(map(str, sorted(teachers)))}; seeds: "
      f"{sorted({s for per in rows.values() for s in per})})")
