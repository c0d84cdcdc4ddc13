"""The 6 -> 3 analyses (docs/results/paper-claims.md, claims 3, 4 and 5) pooled over the logs of several
workspaces: every score is the one a stage printed when it published (or found itself up
to date), read from the logs of `runs/paper-analyses-mrpc.sh` and
`runs/paper-analyses-more-seeds.sh`.

A (row, seed) found in more than one log is a reproducibility check, printed first: the
same command, seed and teacher recipe in a fresh workspace should print the same score.
Pooling across workspaces is honest only if those checks agree; the tables then take
each (row, seed) from the first log that has it.

    python runs/paper-analyses-pool.py runs/results/paper-analyses-6to3.log NEW.log ...
"""

import re
import shlex
import statistics
import sys
from pathlib import Path

TRAIN = re.compile(r"f1 (\d\.\d+)\s+accuracy (\d\.\d+)\s+score (\d\.\d+)")
EVAL = re.compile(r"teacher_score (\d\.\d+).*?successor_score (\d\.\d+)", re.S)
VERSION = re.compile(r"(?:published )?MRPC/([\w-]+)/(v\d+)(?: is up to date| in )")


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    """The value after `name` in a command line, or `default`."""
    return args[args.index(name) + 1] if name in args else default


def replace_label(args: list[str]) -> str:
    """A row label for a `replace` command line: scheduler, its arguments, depth."""
    label = option(args, "--scheduler", "linear")
    extra = [args[i + 1] for i, a in enumerate(args) if a == "--scheduler-arg"]
    if label == "anti-curriculum" and not extra:
        extra = ["steps_to_one=1000"]  # the unmatched first run (docs/results/paper-claims.md, claim 3)
    layers = option(args, "--successor-layers", "3")
    return f"{label}{' ' + ','.join(extra) if extra else ''}, {layers}L"


def command(line: str, body: str) -> list[str]:
    """The command line of a block. The 6 -> 3 log's matched anti-curriculum rerun wrote
    short headers (`+ replace 42`, `+ finetune-successor 42 from v19`): spelled out here,
    the scheduler checked against what the stage printed."""
    args = shlex.split(line)
    if args[0] == "theseus":
        return args[1:]
    if args[0] == "replace" and "p = 1 − min" in body and "p=0 from step 300" in body:
        return ["replace", "--seed", args[1], "--scheduler", "anti-curriculum",
                "--scheduler-arg", "steps_to_one=300"]
    if args[0] == "finetune-successor" and args[2] == "from":
        return ["finetune-successor", "--seed", args[1], "--from", f"replace={args[3]}"]
    raise ValueError(f"unknown block header in the log: + {line}")


def parse(log: Path) -> dict[tuple[str, int], float]:
    """(row label, seed) -> score in percent, for one workspace's log."""
    blocks = re.split(r"^\+ ", log.read_text(), flags=re.M)[1:]
    replaces: dict[str, tuple[str, int]] = {}  # replace version -> (label, seed)
    out: dict[tuple[str, int], float] = {}
    for block in blocks:
        line, body = block.split("\n", 1)
        args = command(line, body)
        stage, seed = args[0], int(option(args, "--seed", "0"))
        versions = VERSION.findall(body)
        source = option(args, "--from", "")
        if stage == "finetune-teacher" and (m := TRAIN.findall(body)):
            out[("teacher", 0)] = 100 * float(m[-1][2])
        elif stage == "replace" and (m := TRAIN.findall(body)) and versions:
            label = replace_label(args)
            replaces[versions[-1][1]] = (label, seed)
            out[(f"after replace: {label}", seed)] = 100 * float(m[-1][2])
        elif stage == "finetune-successor" and (m := TRAIN.findall(body)):
            label, rseed = replaces[source.split("=")[1]]
            out[(f"theseus: {label}", seed)] = 100 * float(m[-1][2])
        elif stage == "truncate" and (m := TRAIN.findall(body)):
            layers = option(args, "--successor-layers", "3")
            out[(f"truncate, {layers}L", seed)] = 100 * float(m[-1][2])
        elif stage == "evaluate" and "--modules" in args and (m := EVAL.search(body)):
            label, rseed = replaces[source.split("=")[1]]
            out[(f"module {option(args, '--modules')}", rseed)] = 100 * float(m.group(2))
            out[("teacher (evaluate)", 0)] = 100 * float(m.group(1))
    return out


def summary(scores: list[float]) -> str:
    """median, mean ± std (n)."""
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return (f"{statistics.median(scores):.2f} | {statistics.mean(scores):.2f} ± "
            f"{sd:.2f} ({len(scores)})")


def main(paths: list[str]) -> None:
    logs = [(Path(p).name, parse(Path(p))) for p in paths]
    print("## Reproducibility: the same (row, seed) in more than one workspace\n")
    print("| row | seed | " + " | ".join(name for name, _ in logs) + " | same |")
    print("|---|---|" + "---|" * len(logs) + "---|")
    keys = sorted({k for _, rows in logs for k in rows})
    for key in keys:
        found = [rows.get(key) for _, rows in logs]
        if sum(v is not None for v in found) > 1:
            cells = " | ".join("" if v is None else f"{v:.2f}" for v in found)
            vals = {round(v, 2) for v in found if v is not None}
            print(f"| {key[0]} | {key[1] or ''} | {cells} | "
                  f"{'yes' if len(vals) == 1 else 'NO'} |")
    pooled: dict[str, dict[int, float]] = {}
    for _, rows in logs:
        for (label, seed), v in rows.items():
            pooled.setdefault(label, {}).setdefault(seed, v)
    seeds = sorted({s for per in pooled.values() for s in per if s})
    teacher = pooled.get("teacher (evaluate)", pooled.get("teacher", {})).get(0)
    print(f"\n## Pooled (teacher {teacher:.2f}), seeds {seeds}\n")
    print("| row | " + " | ".join(map(str, seeds)) + " | median | mean ± std (n) |")
    print("|---|" + "---|" * len(seeds) + "---|---|")
    order = lambda label: (not label.startswith("module"), label)  # noqa: E731
    for label in sorted(pooled, key=order):
        per = pooled[label]
        if label.startswith("teacher") or not any(s for s in per):
            continue
        cells = " | ".join(f"{per[s]:.2f}" if s in per else "" for s in seeds)
        scores = [per[s] for s in sorted(per)]
        delta = (f" (Δ to the teacher {statistics.median(scores) - teacher:+.2f})"
                 if label.startswith("module") else "")
        print(f"| {label}{delta} | {cells} | {summary(scores)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
