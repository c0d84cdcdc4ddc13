"""Issue 19, items 2 and 3, in one call on a lent GPU (the `device` tool's H200).

all-mpnet-base-v2 (12 layers, hidden 768) compressed 12 -> 6 on real GLUE with the
tool's own commands, many runs at once on the one GPU (each run is its own process and
its own copy of the task's workspace, since a workspace runs one version of a stage at a
time; the copies share the teacher by hard links):

  per task (--tasks, in order):  finetune-teacher (the default recipe), then per seed
      (42, 43, 44) four chains, each ending with `evaluate`:
        kd  replace -> finetune-successor, --distill-weight 0.5  (Theseus + KD, the
            embedded model's recipe)
        tl  replace -> finetune-successor, --distill-weight 0   (the paper's task loss,
            a new model's default)
        tr  truncate, 7 epochs      di  distill, 7 epochs   (replace 4 + finetune 3)
  MRPC only, the paper's analyses at 12 -> 6 (task loss, as in the paper):
        c5/c7/c9  replace --scheduler constant p -> finetune-successor (section 5.3)
        anti         replace --scheduler anti-curriculum -> finetune-successor
        (linear is the tl chain); after c5's replace, `evaluate --successor replace
        --modules m` for m = 1..6 (section 5.1, Table 5)
  MRPC: `sweep replace --param learning_rate=2e-5,5e-5,1e-4 --param
        scheduler.steps_to_one=S` for S = 1000 (the default) and 300 (1 seed each).
  MRPC, depth (section 5.4): per seed and n = 3, 4: dN  replace --successor-layers n ->
        finetune-successor (task loss); tN  truncate --successor-layers n, 7 epochs.
--chains picks chains by name (kd,tl,tr,di,c5,c7,c9,anti,sweep,d3,t3,d4,t4), --set changes
a setting of every workspace (a stronger teacher: --set finetune-teacher.epochs=6).

Jobs start by priority (the list above) as slots free up; none starts after
--start-cutoff seconds, and at --deadline every run still going is stopped (SIGTERM,
then SIGKILL), so the call ends in time and returns what finished. Every workspace's
small files (manifests, metrics, tables, logs; no weights) go into OUT/results.tar.gz.

    python runs/device_campaign.py --model DIR --glue DIR --root DIR --out DIR \
        [--tasks MRPC,RTE] [--workers 16] [--deadline 480] [--precision bf16]
    python runs/device_campaign.py --tiny ...   # the same jobs on a tiny random MPNet and
                                                # generated data, 1 epoch (a dry run)

runs/pool-device-tables.py turns the returned tarball into the docs' tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EVAL = ["evaluate", "--speed-repeats", "1", "--speed-batches", "1"]
TL = ["--distill-weight", "0"]
KD = ["--distill-weight", "0.5"]  # the embedded 6 -> 3 recipe's (a new model's default is 0)
T0 = time.monotonic()


def now() -> float:
    return time.monotonic() - T0


@dataclass
class Job:
    """One chain of `theseus` commands in its own copy (``copy``) of task ``task``'s
    workspace, or in the base workspace itself (``copy`` None: the teacher)."""
    name: str
    task: str
    commands: list[list[str]]
    copy: str | None = None
    after: str | None = None  # name of a job that must have succeeded first
    proc: subprocess.Popen | None = None
    step: int = 0
    status: str = "waiting"
    started: float | None = None
    times: list[float] = field(default_factory=list)


def jobs_for(tasks: list[str], seeds: list[int], modules: int,
             chains: list[str] | None = None, depths: tuple[int, ...] = (3, 4)) -> list[Job]:
    """The jobs in priority order; ``modules``: the successor's module count; ``depths``:
    the other successor depths of the depth analysis."""
    jobs = [Job(f"{t}-teacher", t, [["finetune-teacher"]]) for t in tasks]
    for t in tasks:
        for s in seeds:
            seed = ["--seed", str(s)]
            jobs += [
                Job(f"{t}-kd{s}", t, [["replace", *seed, *KD],
                                      ["finetune-successor", *seed, *KD], EVAL]),
                Job(f"{t}-tl{s}", t, [["replace", *seed, *TL],
                                      ["finetune-successor", *seed, *TL], EVAL]),
                Job(f"{t}-tr{s}", t, [["truncate", *seed, "--epochs", "7"], EVAL]),
                Job(f"{t}-di{s}", t, [["distill", *seed, "--epochs", "7"], EVAL]),
            ]
    if "MRPC" in tasks:
        for s in seeds:
            seed = ["--seed", str(s)]
            for rate in ("0.5", "0.7", "0.9"):
                swap = [[*EVAL, "--successor", "replace", "--modules", str(m)]
                        for m in range(1, modules + 1)] if rate == "0.5" else []
                jobs.append(Job(f"MRPC-c{rate[2:]}{s}", "MRPC", [
                    ["replace", *seed, *TL, "--scheduler", "constant",
                     "--scheduler-arg", f"p={rate}"],
                    *swap, ["finetune-successor", *seed, *TL], EVAL]))
            jobs.append(Job(f"MRPC-anti{s}", "MRPC", [
                ["replace", *seed, *TL, "--scheduler", "anti-curriculum"],
                ["finetune-successor", *seed, *TL], EVAL]))
        for steps in ("1000", "300"):  # the default ramp, and the 6 -> 3 recipe's
            jobs.append(Job(f"MRPC-sweep{steps}", "MRPC", [
                ["sweep", "replace", "--param", "learning_rate=2e-5,5e-5,1e-4",
                 "--param", f"scheduler.steps_to_one={steps}"]]))
        for s in seeds:  # depth (section 5.4, Table 7): Theseus and truncation at n layers
            seed = ["--seed", str(s)]
            for n in depths:
                layers = ["--successor-layers", str(n)]
                jobs += [Job(f"MRPC-d{n}{s}", "MRPC", [["replace", *seed, *TL, *layers],
                                                      ["finetune-successor", *seed, *TL],
                                                      EVAL]),
                         Job(f"MRPC-t{n}{s}", "MRPC", [["truncate", *seed, *layers,
                                                       "--epochs", "7"], EVAL])]
    if chains:  # only these chains (and the teachers)
        jobs = [j for j in jobs if chain_of(j) in ("teacher", *chains)]
    for j in jobs:
        if not j.name.endswith("-teacher"):
            j.copy, j.after = j.name, f"{j.task}-teacher"
    return jobs


def chain_of(job: Job) -> str:
    """``kd`` of ``STS-B-kd42``, ``c5`` of ``MRPC-c543``, ``sweep`` of ``MRPC-sweep300``."""
    rest = job.name[len(job.task) + 1:]
    m = re.fullmatch(r"([a-z]+\d?)\d\d", rest)
    return "sweep" if rest.startswith("sweep") else m.group(1) if m else rest


def merge(doc: dict, updates: dict) -> dict:
    for k, v in updates.items():
        doc[k] = merge(doc.get(k) or {}, v) if isinstance(v, dict) else v
    return doc


def init_base(root: Path, task: str, args, env: dict) -> Path:
    """`theseus init` the task's base workspace and set the run's settings in its file."""
    ws = root / task / "base"
    subprocess.run([sys.executable, "-m", "theseus_cli", "init", str(ws), "--model",
                    str(args.model), "--task", task, "--glue-dir", str(args.glue)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    no_saves = {"save_every": None, "save_every_minutes": 0}  # nothing resumes here
    updates: dict = {"runtime": {"device": args.device, "precision": args.precision},
                     "data": {"glue_dir": str(Path(args.glue).resolve())}}
    for stage in ("finetune-teacher", "replace", "finetune-successor", "truncate", "distill"):
        updates[stage] = dict(no_saves)
    if args.tiny:
        updates["data"].update(max_train_samples=48, max_eval_samples=20)
        for stage in ("finetune-teacher", "replace", "finetune-successor"):
            updates[stage].update(epochs=1, batch_size=8)
        updates["truncate"].update(batch_size=8)
        updates["distill"].update(batch_size=8)
    for setting in args.set:
        key, _, value = setting.partition("=")
        *sections, last = key.split(".")
        node = updates
        for name in sections:
            node = node.setdefault(name, {})
        node[last] = yaml.safe_load(value)
    path = ws / "theseus.yaml"
    path.write_text(yaml.safe_dump(merge(yaml.safe_load(path.read_text()), updates),
                                   sort_keys=False))
    return ws


def copy_workspace(base: Path, dest: Path) -> None:
    """Copy a workspace: files over 1 MB (immutable weights) as hard links, the rest
    (manifests, locks, theseus.yaml) as real copies."""
    def link_or_copy(src, dst):
        if os.path.getsize(src) > 1 << 20:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.copytree(base, dest, copy_function=link_or_copy)


def start(job: Job, root: Path, env: dict) -> None:
    ws = root / job.task / (job.copy or "base")
    if job.copy and job.step == 0:
        copy_workspace(root / job.task / "base", ws)
    cmd = [sys.executable, "-m", "theseus_cli", *job.commands[job.step]]  # in ws (cwd)
    with (root / "logs" / f"{job.name}.log").open("a") as log:  # the child keeps its copy
        log.write(f"\n=== {now():.0f}s + theseus {' '.join(job.commands[job.step])}\n")
        log.flush()
        job.proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    job.status, job.started = "running", now()


def run(jobs: list[Job], root: Path, env: dict, workers: int, cutoff: float,
        deadline: float) -> None:
    (root / "logs").mkdir(parents=True, exist_ok=True)
    by_name = {j.name: j for j in jobs}
    while True:
        for j in jobs:  # finished steps
            if j.status == "running" and j.proc.poll() is not None:
                j.times.append(round(now() - j.started, 1))
                if j.proc.returncode != 0:
                    j.status = f"failed (rc {j.proc.returncode}, step {j.step + 1})"
                elif j.step + 1 < len(j.commands):
                    j.step += 1
                    start(j, root, env)
                else:
                    j.status = "done"
                print(f"{now():6.0f}s {j.name}: step {j.step + 1}/{len(j.commands)} "
                      f"{j.status} ({j.times[-1]} s)", flush=True)
        for j in jobs:  # a job whose prerequisite failed never starts
            if j.status == "waiting" and j.after and by_name[j.after].status.startswith(
                    ("failed", "stopped", "not started")):
                j.status = f"not started ({j.after} did not finish)"
        running = sum(j.status == "running" for j in jobs)
        if now() < cutoff:
            for j in jobs:
                if running >= workers:
                    break
                if j.status == "waiting" and (not j.after or by_name[j.after].status == "done"):
                    start(j, root, env)
                    running += 1
        if running == 0 and (now() >= cutoff or all(j.status != "waiting" for j in jobs)):
            break
        if now() >= deadline:
            stop([j for j in jobs if j.status == "running"])
            break
        time.sleep(1)
    for j in jobs:
        if j.status == "waiting":
            j.status = "not started (cutoff)"


def stop(running: list[Job]) -> None:
    """SIGTERM (stages stop cleanly), SIGKILL after 10 s."""
    for j in running:
        os.killpg(j.proc.pid, signal.SIGTERM)
    end = time.monotonic() + 10
    while time.monotonic() < end and any(j.proc.poll() is None for j in running):
        time.sleep(0.5)
    for j in running:
        if j.proc.poll() is None:
            os.killpg(j.proc.pid, signal.SIGKILL)
        j.proc.wait()
        j.status = f"stopped at the deadline (step {j.step + 1})"


def collect(root: Path, jobs: list[Job], out: Path) -> None:
    """Every small file of every workspace, the logs and the job table, in one tarball."""
    summary = [{"job": j.name, "status": j.status, "step_seconds": j.times} for j in jobs]
    (root / "jobs.json").write_text(json.dumps(summary, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 2 << 20 \
                    and path.suffix not in {".safetensors", ".bin", ".pt", ".onnx"} \
                    and path.name not in {"tokenizer.json", "vocab.txt"}:
                tar.add(path, arcname=str(path.relative_to(root)))
    for j in jobs:
        print(f"{j.name:14} {j.status:40} {j.times}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path)
    p.add_argument("--glue", type=Path)
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tasks", default="MRPC,RTE")
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--chains", help="only these chains, e.g. kd,tr (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a theseus.yaml setting for every workspace, e.g. "
                        "finetune-teacher.epochs=6 or replace.schedulers.linear.steps_to_one=300 "
                        "(VALUE read as YAML); repeatable")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--start-cutoff", type=float, default=400, help="seconds")
    p.add_argument("--deadline", type=float, default=480, help="seconds")
    p.add_argument("--device", default="cuda")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    if args.tiny:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import write_glue
        from tiny_models import tiny_model
        args.glue = write_glue(args.root / "glue")
        args.model = tiny_model_dir(args.root / "tiny-mpnet", tiny_model)
    tasks = args.tasks.split(",")
    for t in tasks:
        init_base(args.root, t, args, env)
    jobs = jobs_for(tasks, [int(s) for s in args.seeds.split(",")], 2 if args.tiny else 6,
                    args.chains.split(",") if args.chains else None,
                    (1, 2) if args.tiny else (3, 4))
    try:
        run(jobs, args.root, env, args.workers, args.start_cutoff, args.deadline)
    finally:
        stop([j for j in jobs if j.status == "running"])
        collect(args.root, jobs, args.out)


def tiny_model_dir(dest: Path, tiny_model) -> Path:
    """A random 4-layer MPNet (hidden 32) with a word-level tokenizer, for the dry run."""
    from conftest import SPECIAL, WORDS
    from transformers import BertTokenizerFast

    vocab_dir = dest / "vocab"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    (vocab_dir / "vocab.txt").write_text("\n".join([*SPECIAL, *WORDS, "."]) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(vocab_dir))
    model = tiny_model("mpnet", vocab_size=len(tokenizer))
    model.save_pretrained(dest / "model")
    tokenizer.save_pretrained(dest / "model")
    return dest / "model"


if __name__ == "__main__":
    main()
