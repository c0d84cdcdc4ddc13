"""The docs' tables (docs/results/) from what runs/device_campaign.py returned (results.tar.gz,
unpacked into DIR): per task the median over seeds of the dev score of the teacher,
Theseus + KD, Theseus (task loss), truncate and distill, with mean ± std (n) and
retention, the paper's numbers beside them; on MRPC the replacing-rate schedulers
(section 5.3, Table 6) and one module at a time (section 5.1, Table 5); the sweeps.

    python runs/pool-device-tables.py DIR[=CHAIN,...] ... [--json=FILE] > runs/results/mpnet-12to6.md

With several DIRs (calls), each DIR=CHAINS takes only those chains from that call (e.g.
DIR1=tl,tr,di DIR2=kd); every row's retention is against the teacher of its own call.

Each copy of a workspace (DIR/TASK/TASK-<chain><seed>) ran one chain with one seed; its
`evaluate` manifests hold the dev metrics of the teacher and of that chain's successor.
"""

import json
import re
import statistics
import sys
from pathlib import Path

calls = [(Path(a.split("=")[0]), a.split("=")[1].split(",") if "=" in a else None)
         for a in sys.argv[1:] if not a.startswith("--json=")]
dump = next((a[len("--json="):] for a in sys.argv[1:] if a.startswith("--json=")), None)
# the paper's Table 2 (median of 5 runs, GLUE dev; MRPC: mean of F1 and accuracy) and
# Table 6 (constant rate / anti-curriculum / curriculum)
PAPER = {"MRPC": {"teacher": 89.5, "kd": 89.0, "tr": 86.0, "di": 86.2,
                  "c": 87.1, "anti": 85.6, "tl": 89.0},
         "RTE": {"teacher": 71.1, "kd": 68.2, "tr": 62.1, "di": 64.9,
                 "c": 66.4, "anti": 62.4, "tl": 68.2},
         "STS-B": {"teacher": 88.9, "kd": 88.7, "tr": 81.9, "di": 84.9,
                   "c": 88.4, "anti": 85.4, "tl": 88.7},
         "CoLA": {"teacher": 54.3, "kd": 51.1, "tr": 43.4, "di": 45.1,
                  "c": 44.4, "anti": 42.8, "tl": 51.1}}
# Table 7, MRPC: (fine-tuning of the truncated model, Theseus) at 6, 4 and 3 layers
PAPER_DEPTH = {6: (86.0, 89.0), 4: (86.0, 87.5), 3: (81.9, 84.3)}
NAMES = {"kd": "Theseus + KD (α = 0.5, as the 6 → 3 recipe)",
         "tl": "Theseus, task loss (the default here; the paper)",
         "tr": "truncate (fine-tuning)", "di": "distill (vanilla KD)",
         "c5": "constant p = 0.5", "c7": "constant p = 0.7", "c9": "constant p = 0.9",
         "anti": "anti-curriculum"}


def evaluations(task):
    """{(chain, modules): {seed: metrics}} over every copy of ``task``."""
    out = {}
    copies = [(c, only) for root, only in calls for c in sorted((root / task).glob(f"{task}-*"))]
    for copy, only in copies:
        m = re.fullmatch(rf"{task}-([a-z]+\d?)(\d\d)", copy.name)
        if not m or (only and m.group(1) not in only):
            continue
        chain, seed = m.group(1), int(m.group(2))
        for man in (copy / "artifacts" / task / "evaluate").glob("v*/manifest.json"):
            doc = json.loads(man.read_text())
            if doc.get("status", "complete") != "complete":
                continue
            out.setdefault((chain, doc["params"].get("modules")), {})[seed] = doc["metrics"]
    return out


def stats(values):
    values = [100 * v for v in values]
    if not values:
        return "—", "—"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{statistics.median(values):.2f}",
            f"{statistics.mean(values):.2f} ± {sd:.2f} ({len(values)})")


def table(task, evals):
    print(f"\n### {task}: 12 → 6 layers, GLUE dev\n")
    print("| method | dev score, median | mean ± std (n) | its teacher | retention | paper |")
    print("|---|---|---|---|---|---|")
    for chain in ("kd", "tl", "tr", "di"):
        per = evals.get((chain, None), {})
        med, ms = stats([m["successor_score"] for m in per.values()])
        teachers = {round(m["teacher_score"], 6) for m in per.values()}
        teacher = "—" if not per else " / ".join(f"{100 * t:.2f}" for t in sorted(teachers))
        ret = "—" if not per else \
            f"{statistics.median(m['successor_score'] / m['teacher_score'] for m in per.values()):.1%}"
        print(f"| {NAMES[chain]} | {med} | {ms} | {teacher} | {ret} | {PAPER[task][chain]} |")
    print(f"| paper's teacher (BERT-base) | | | | | {PAPER[task]['teacher']} |")
    maj = [m["majority_score"] for per in evals.values() for m in per.values()
           if m.get("majority_score") is not None]
    if maj:
        print(f"| majority class | {100 * maj[0]:.2f} | | | | |")
    print("\n(the paper's per-task score: MRPC's the mean of F1 and accuracy, RTE's "
          "accuracy, STS-B's the mean of Pearson and Spearman, CoLA's Matthews correlation; "
          "retention: the median over seeds of successor / teacher)")


def schedulers(evals):
    print("\n### MRPC: replacing rate (paper section 5.3, Table 6), task loss, 12 → 6\n")
    print("| scheduler | dev score, median | mean ± std (n) | paper |")
    print("|---|---|---|---|")
    for chain in ("c5", "c7", "c9", "anti", "tl"):
        per = evals.get((chain, None), {})
        med, ms = stats([m["successor_score"] for m in per.values()])
        name = "linear (curriculum)" if chain == "tl" else NAMES[chain]
        paper = PAPER["MRPC"]["c" if chain.startswith("c") else chain]
        paper = f"{paper} (best constant)" if chain.startswith("c") else paper
        print(f"| {name} | {med} | {ms} | {paper} |")


def modules(evals):
    print("\n### MRPC: one successor module at a time (paper section 5.1, Table 5)\n")
    print("After `replace --scheduler constant --scheduler-arg p=0.5` (task loss, no "
          "successor fine-tuning), the teacher with only module i replaced:\n")
    print("| module replaced | dev score, median | mean ± std (n) | Δ to the teacher (median) |")
    print("|---|---|---|---|")
    for i in range(1, 7):
        per = evals.get(("c5", str(i)), {})
        if not per:
            continue
        med, ms = stats([m["successor_score"] for m in per.values()])
        delta = statistics.median(100 * (m["successor_score"] - m["teacher_score"])
                                  for m in per.values())
        print(f"| {i} | {med} | {ms} | {delta:+.2f} |")


def depth(evals):
    depths = sorted({int(c[1:]) for c, _ in evals if re.fullmatch(r"[dt]\d", c)})
    if not depths:
        return
    rows = [(n, evals.get((f"d{n}", None), {}), evals.get((f"t{n}", None), {})) for n in depths]
    rows.append((6, evals.get(("tl", None), {}), evals.get(("tr", None), {})))
    print("\n### MRPC: depth (paper section 5.4, Table 7), Theseus (task loss) against "
          "truncation\n")
    print("| layers | Theseus, median | mean ± std (n) | truncate, median | mean ± std (n) "
          "| paper: truncate / Theseus |")
    print("|---|---|---|---|---|---|")
    for n, th, tr in sorted(rows, key=lambda r: -r[0]):
        a, b = stats([m["successor_score"] for m in th.values()])
        c, d = stats([m["successor_score"] for m in tr.values()])
        paper = " / ".join(map(str, PAPER_DEPTH[n])) if n in PAPER_DEPTH else "—"
        print(f"| {n} | {a} | {b} | {c} | {d} | {paper} |")


def sweeps():
    print("\n### MRPC: sweeps of replace (1 seed, dev score after replace)\n")
    print("| learning_rate | steps_to_one | dev score | F1 | accuracy |")
    print("|---|---|---|---|---|")
    for root, _ in calls:
        for trials in sorted((root / "MRPC").glob("MRPC-sweep*/artifacts/MRPC/sweep/v*/trials.json")):
            for t in json.loads(trials.read_text())["trials"]:
                m = t["runs"][0]["metrics"]
                print(f"| {t['params']['learning_rate']} | {t['params']['scheduler.steps_to_one']} "
                      f"| {100 * m['score']:.2f} | {100 * m['f1']:.2f} "
                      f"| {100 * m['accuracy']:.2f} |")


everything = {}
for task in ("MRPC", "RTE", "STS-B", "CoLA"):
    if any((root / task).is_dir() for root, _ in calls):
        evals = evaluations(task)
        everything[task] = {f"{chain}{'' if mods is None else f'-module{mods}'}": per
                            for (chain, mods), per in sorted(evals.items(), key=str)}
        table(task, evals)
        if task == "MRPC":
            schedulers(evals)
            modules(evals)
            depth(evals)
sweeps()
if dump:  # every evaluation's dev metrics, per task, chain and seed
    Path(dump).write_text(json.dumps(everything, indent=1, sort_keys=True))
for root, _ in calls:
    print(f"\n### Jobs of {root.name}\n")
    for j in json.loads((root / "jobs.json").read_text()):
        print(f"- {j['job']}: {j['status']}, steps {j['step_seconds']} s")
