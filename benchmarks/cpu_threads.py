"""Two trainings side by side on one CPU: PyTorch's default threads against split threads.

Each run is a separate process that does what a training stage does per optimizer step
(forward, backward, AdamW) on the embedded predecessor (6-layer MiniLM BERT, hidden 384,
a new MRPC head) with a fixed random batch, through ``theseus_cli.train.runtime.Runtime``
with ``threads`` set as ``runtime.threads`` / ``--threads`` sets it. The runs of one
configuration load their model, take their warm-up steps, then start their timed steps at
the same instant. Configurations, in one run of the script:

- one run alone, PyTorch's default threads (one per core), then with half the cores;
- two runs side by side, each with the default threads (what two ``theseus`` commands
  started at once do), then each with half the cores (``--threads``).

Prints the median seconds per optimizer step of each run, its slow-down against the run
alone with the default threads, and the optimizer steps per second of all runs together.

    python benchmarks/cpu_threads.py --markdown                # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from report import cpu_model, table


def worker(threads: int | None, steps: int, warmup: int, batch: int, seq: int,
           start_at: float) -> None:
    """One run: print the seconds of each timed optimizer step as JSON."""
    import torch
    from report import embedded_mrpc

    _, model, _ = embedded_mrpc(threads or torch.get_num_threads())  # None: torch's default

    from theseus_cli.train.runtime import Runtime

    runtime = Runtime("cpu", "no", seed=0, threads=threads)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model, optimizer = runtime.prepare(model, optimizer)
    gen = torch.Generator().manual_seed(0)
    data = {"input_ids": torch.randint(1000, 20000, (batch, seq), generator=gen),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long),
            "labels": torch.randint(0, 2, (batch,), generator=gen)}
    model.train()

    def step() -> float:
        t0 = time.perf_counter()
        runtime.backward(model(**data).loss)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for _ in range(warmup):
        step()
    time.sleep(max(0.0, start_at - time.time()))  # every run of the configuration starts now
    print(json.dumps({"threads": runtime.threads, "seconds": [step() for _ in range(steps)]}))


def configuration(runs: int, threads: int | None, args) -> list[dict]:
    """Start ``runs`` worker processes with ``threads`` each; their timed steps overlap."""
    start_at = time.time() + args.load_seconds
    cmd = [sys.executable, __file__, "--worker", "--steps", str(args.steps), "--warmup",
           str(args.warmup), "--batch", str(args.batch), "--seq", str(args.seq),
           "--start-at", repr(start_at)] + (["--threads", str(threads)] if threads else [])
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(runs)]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a worker failed with exit status {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="untimed optimizer steps per run")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--load-seconds", type=float, default=40.0,
                    help="seconds from start to the timed steps (model load and warm-up)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.threads, args.steps, args.warmup, args.batch, args.seq,
                      args.start_at)

    cores = len(os.sched_getaffinity(0))
    half = max(1, cores // 2)
    plan = [("alone", 1, None), ("alone", 1, half), ("side by side", 2, None),
            ("side by side", 2, half)]
    rows, base = [], None
    started = time.time()
    for label, runs, threads in plan:
        results = configuration(runs, threads, args)
        medians = [statistics.median(r["seconds"]) for r in results]
        base = base or medians[0]
        rows.append([label, str(runs), f"{results[0]['threads']}",
                     " / ".join(f"{m:.2f}" for m in medians),
                     " / ".join(f"{m / base:.2f}×" for m in medians),
                     f"{sum(1 / m for m in medians):.2f}"])
    print(f"{datetime.date.today()}, {cpu_model()}, {cores} cores, batch {args.batch} x "
          f"{args.seq} tokens, median of {args.steps} optimizer steps per run after "
          f"{args.warmup} warm-up; {time.time() - started:.0f} s in all\n")
    print(table(["runs", "n", "threads each", "s / step", "slower", "steps / s, all"], rows,
                args.markdown))


if __name__ == "__main__":
    main()
