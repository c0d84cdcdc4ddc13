"""Print the newest `replace` version of a workspace (run from inside it) whose seed is
SEED and whose params hold every key of the JSON object WANT (nested dicts: recursively).
Nothing is printed when none matches.

    python runs/latest_replace.py TASK SEED WANT
    python runs/latest_replace.py MRPC 43 '{"distill_weight": 0.0, "successor_layers": 4}'
"""

import json
import sys
from pathlib import Path


def holds(have, want) -> bool:
    """Every key of ``want`` has its value in ``have`` (dicts compared recursively)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(holds(have.get(k), v) for k, v in want.items())
    return have == want


task, seed, want = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
for d in sorted(Path("artifacts", task, "replace").glob("v*"), key=lambda p: -int(p.name[1:])):
    m = json.loads((d / "manifest.json").read_text())
    if m["config"]["runtime"]["seed"] == seed and holds(m["params"], want):
        print(d.name)
        break
