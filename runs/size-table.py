"""Print a task's size/quality table (issue 32) from the newest glue-table artifact of a
workspace: per method its parameters, the word embedding's share of them, how many times
fewer than the teacher's, its int8 ONNX file (MB, when exported), the int8 model's p50
latency at batch 1 x 128 tokens against the PyTorch fp32 teacher (the newest benchmark
that timed it), the score's median over seeds, mean ± std (n) and retention.

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
root = Path(args.workspace, "artifacts")


def newest(stage_dirs):
    found = [p for d in stage_dirs for p in d.glob("v*")]
    return max(found, key=lambda p: (p.stat().st_mtime, int(p.name[1:])), default=None)


table = newest([root / args.task / "glue-table", root / "GLUE" / "glue-table"])
rows = json.loads((table / "tables.json").read_text())[args.task]
teacher = rows[0]
latency = {}  # model artifact label -> (format -> b1×s128 p50 ms)
bench = newest([root / args.task / "benchmark"])
if bench is not None:
    for r in json.loads((bench / "benchmark.json").read_text())["rows"]:
        shape = r["shapes"].get("b1×s128")
        if shape:
            latency.setdefault(r["artifact"], {})[r["format"]] = shape["p50_ms"]
teacher_ms = next((v["pytorch fp32"] for k, v in latency.items()
                   if "/finetune-teacher/" in k and "pytorch fp32" in v), None)


def stat(row):
    return row["metrics"][f"test_{args.test}"] if args.test else row["score"]


def int8_latency(row):
    labels = row.get("successors") or [f"{args.task}/finetune-teacher/{v}"
                                       for v in row.get("artifacts", [])]
    ms = [latency[lb]["onnx-int8"] for lb in labels if "onnx-int8" in latency.get(lb, {})]
    if not ms or not teacher_ms:
        return "—"
    return f"{ms[0]:.1f} ms ({teacher_ms / ms[0]:.1f}×)"


print(f"<!-- {table}; {bench} (teacher PyTorch fp32 b1×s128: "
      f"{'—' if teacher_ms is None else f'{teacher_ms:.1f} ms'}) -->")
print("| method | parameters | embedding | × fewer | int8 MB | int8 b1×128 | "
      "score (median) | mean ± std (n) | retention |")
print("|---|---|---|---|---|---|---|---|---|")
for row in rows:
    total, emb, s = row.get("parameters"), row.get("embedding"), stat(row)
    if s["median"] is None:
        continue
    size = "—" if total is None else f"{total / 1e6:.2f}M"
    share = "—" if not total or emb is None else f"{100 * emb / total:.0f}%"
    fewer = "—" if not total else f"{teacher['parameters'] / total:.2f}×"
    int8 = "—" if not row.get("int8_mb") else f"{row['int8_mb']:.1f}"
    spread = (f"{100 * s['mean']:.2f} ± {100 * (s['std'] or 0):.2f} ({s['n']})"
              if s.get("n") else "—")
    retention = ("—" if total is None else
                 f"{100 * s['median'] / stat(teacher)['median']:.1f}%")
    print(f"| {row['method']} | {size} | {share} | {fewer} | {int8} | {int8_latency(row)} | "
          f"{100 * s['median']:.2f} | {spread} | {retention} |")
