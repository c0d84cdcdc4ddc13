"""Latency, throughput and peak memory of a model: the one timing code of theseus.

:func:`timed_calls` is the loop every measurement uses: warm-up calls first (not timed),
then timed calls until both ``min_iters`` calls and ``min_seconds`` have passed (at most
``max_iters``), each call's wall-clock seconds (CUDA synchronised by the caller's run).
:func:`measure` (``theseus benchmark``, export's model card) times a model (PyTorch, or an
ONNX graph in ONNX Runtime) on a list of input shapes: warm-up calls first (not timed),
then timed calls until both ``min_iters`` calls and ``min_seconds`` have passed (at most
``max_iters``). Each call is one batch; latency is its wall-clock time (CUDA synchronised), throughput the
examples per second over the timed calls. Run in a fresh process (:func:`measure_isolated`)
its peak resident memory is the model's alone.
"""

from __future__ import annotations

import inspect
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theseus_cli.deploy import onnx as deploy
from theseus_cli.model import loading as models


@dataclass
class Shape:
    """One input shape timed: ``name`` (``b8×s128``, ``dev``), its batches (dicts of int64
    numpy arrays (batch, seq_len): input_ids, attention_mask, token_type_ids); the
    calls cycle through them."""

    name: str
    batches: list[dict[str, Any]]


@dataclass
class Job:
    """What :func:`measure` runs: ``runtime`` ``pytorch`` (``path``: a saved model
    directory) or ``onnx`` (``path``: a ``model.onnx``), on ``device``, with ``threads``
    intra-op CPU threads, over ``shapes``."""

    runtime: str
    path: str
    device: str
    threads: int
    shapes: list[Shape]
    warmup: int = 3
    min_iters: int = 5
    max_iters: int = 1000
    min_seconds: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


def synthetic_shapes(vocab_size: int, batch_sizes: list[int], seq_lengths: list[int],
                     seed: int = 0) -> list[Shape]:
    """One :class:`Shape` per batch size × sequence length, named ``bB×sS``: token ids
    drawn uniformly from ``[5, vocab_size)`` (seed ``seed``, the same for every model),
    no padding (mask all ones), segment 0."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shapes = []
    for b in batch_sizes:
        for s in seq_lengths:
            ids = rng.integers(min(5, vocab_size - 1), vocab_size, size=(b, s), dtype=np.int64)
            shapes.append(Shape(f"b{b}×s{s}", [{  # each (batch, seq_len)
                "input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}]))
    return shapes


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform reports)."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()


def cpu_threads() -> int:
    """Threads the benchmark and sessions use by default: the CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _rss_mb() -> float:
    """Resident memory of this process now, MB (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return _peak_rss_mb()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process's program, MB: Linux's VmHWM, which starts
    afresh at exec (``ru_maxrss`` does not: a child forked from a large parent reports
    the parent's size), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6  # kB
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return kb / 1e3 if platform.system() != "Darwin" else kb / 1e6


def _runner(job: Job):
    """A callable running one batch (dict of numpy arrays) and its input names."""
    if job.runtime == "onnx":
        sess = deploy.session(job.path, job.threads, job.device)
        names = [i.name for i in sess.get_inputs()]
        return (lambda b: sess.run(["logits"], {n: b[n] for n in names})), None
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()  # a clean table, not load bars
    torch.set_num_threads(job.threads)
    model, _ = models.load_saved(Path(job.path))
    model = model.float().to(job.device).eval()
    accepted = set(inspect.signature(model.forward).parameters)
    cuda = job.device.startswith("cuda")

    def run(b):
        with torch.inference_mode():
            model(**{k: torch.from_numpy(v).to(job.device) for k, v in b.items()
                     if k in accepted})
        if cuda:
            torch.cuda.synchronize()

    return run, (torch.cuda if cuda else None)


def timed_calls(run: Callable[[Any], Any], batches: list[Any], *, warmup: int = 0,
                min_iters: int = 1, max_iters: int = 1000,
                min_seconds: float = 0.0) -> list[float]:
    """Wall-clock seconds of each timed ``run(batch)`` call, cycling through ``batches``.

    ``warmup`` calls come first and are not timed; then calls until both ``min_iters``
    calls and ``min_seconds`` seconds have passed, at most ``max_iters``. ``run`` must
    return only when its work is done (synchronise CUDA inside it).
    """
    for i in range(warmup):
        run(batches[i % len(batches)])
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_iters and (len(times) < min_iters
                                      or time.perf_counter() - start < min_seconds):
        batch = batches[len(times) % len(batches)]
        t0 = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t0)
    return times


def compare_speed(teacher: Any, successor: Any, batches: list[dict[str, Any]],
                  repeats: int = 3,
                  successor_batches: list[dict[str, Any]] | None = None) -> dict[str, float]:
    """Speed-up of ``successor`` over ``teacher`` (PyTorch models in eval mode) on identical
    ``batches`` (dicts of tensors already on the models' device), as ``evaluate`` reports;
    ``successor_batches``: the same examples tokenised by the successor's own tokenizer
    (a trimmed vocabulary), when it has one.

    One timed call is a full forward pass over all ``batches`` (:func:`timed_calls`; one
    untimed warm-up pass each first). Repeats are interleaved (teacher, successor,
    teacher, ...) so that machine load affects both alike; the median of each is used.

    Returns:
        ``teacher_seconds`` and ``successor_seconds`` (median seconds per pass over all
        batches), ``speedup`` (teacher / successor) and ``examples``.
    """
    import torch

    def full_pass(model: Any) -> Callable[[Any], None]:
        model.eval()
        cuda = next(model.parameters()).is_cuda

        def run(all_batches: list[dict[str, Any]]) -> None:
            with torch.inference_mode():
                for batch in all_batches:
                    model(**batch)
            if cuda:
                torch.cuda.synchronize()
        return run

    t_run, s_run = full_pass(teacher), full_pass(successor)
    t_times: list[float] = []
    s_times: list[float] = []
    for i in range(repeats):
        t_times += timed_calls(t_run, [batches], warmup=int(i == 0), max_iters=1)
        s_times += timed_calls(s_run, [successor_batches or batches], warmup=int(i == 0),
                               max_iters=1)
    t, s = statistics.median(t_times), statistics.median(s_times)
    examples = sum(int(b["input_ids"].shape[0]) for b in batches)
    return {"teacher_seconds": t, "successor_seconds": s, "speedup": t / s, "examples": examples}


def measure(job: Job) -> dict[str, Any]:
    """Time ``job``'s model on each of its shapes.

    Returns:
        ``{"shapes": {name: {"p50_ms", "p90_ms", "mean_ms", "throughput", "calls",
        "examples_per_call"}}, "peak_mb", "load_mb"}``: milliseconds per call (one
        batch), examples per second; peak resident memory of the process (MB; on CUDA
        the peak allocated device memory) and what loading and running the model
        added to it (MB). Warm-up calls are excluded.
    """
    before = _rss_mb()
    run, cuda = _runner(job)
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    results = {}
    for shape in job.shapes:
        times = timed_calls(run, shape.batches, warmup=job.warmup, min_iters=job.min_iters,
                            max_iters=job.max_iters, min_seconds=job.min_seconds)
        examples = sum(len(shape.batches[i % len(shape.batches)]["input_ids"])
                       for i in range(len(times)))
        ms = sorted(1e3 * t for t in times)
        results[shape.name] = {
            "p50_ms": statistics.median(ms), "p90_ms": ms[min(len(ms) - 1, int(0.9 * len(ms)))],
            "mean_ms": statistics.fmean(ms), "throughput": examples / sum(times),
            "calls": len(times), "examples_per_call": examples / len(times)}
    if cuda is not None:
        peak = cuda.max_memory_allocated() / 1e6
        return {"shapes": results, "peak_mb": peak, "load_mb": peak}
    peak = _peak_rss_mb()
    return {"shapes": results, "peak_mb": peak, "load_mb": max(0.0, peak - before)}


def merge_rounds(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's :func:`measure` results of several interleaved rounds, as one: per
    shape the median of the rounds' p50 and p90 (ms), the mean of their means, the
    median throughput, the calls summed, ``round_p50_ms`` (each round's p50) and
    ``spread_pct`` (max − min of the rounds' p50, % of their median); the largest peak
    memory (MB)."""
    shapes = {}
    for name in results[0]["shapes"]:
        per = [r["shapes"][name] for r in results]
        p50s = [x["p50_ms"] for x in per]
        p50 = statistics.median(p50s)
        shapes[name] = {
            "p50_ms": p50, "p90_ms": statistics.median(x["p90_ms"] for x in per),
            "mean_ms": statistics.fmean(x["mean_ms"] for x in per),
            "throughput": statistics.median(x["throughput"] for x in per),
            "calls": sum(x["calls"] for x in per),
            "examples_per_call": per[0]["examples_per_call"], "round_p50_ms": p50s,
            "spread_pct": 100.0 * (max(p50s) - min(p50s)) / p50 if p50 else 0.0}
    peaks = [r["peak_mb"] for r in results if r.get("peak_mb") is not None]
    loads = [r["load_mb"] for r in results if r.get("load_mb") is not None]
    return {"shapes": shapes, "peak_mb": max(peaks) if peaks else None,
            "load_mb": max(loads) if loads else None, "rounds": len(results)}


def measure_isolated(job: Job) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process that imports only this module (not the
    CLI that called it, as a ``multiprocessing`` spawn would), so that the peak memory is
    this model's and its runtime's, and no earlier model warms caches for it.

    Raises:
        RuntimeError: the measuring process failed (its error is named).
    """
    import pickle
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        job_file, result_file = Path(tmp, "job.pickle"), Path(tmp, "result.pickle")
        job_file.write_bytes(pickle.dumps(job))
        proc = subprocess.run([sys.executable, "-m", __name__, str(job_file), str(result_file)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not result_file.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"measuring {job.path} failed in its process (exit "
                               f"{proc.returncode}): {last}")
        return pickle.loads(result_file.read_bytes())


if __name__ == "__main__":  # the process of measure_isolated: job pickle in, result out
    import pickle
    import sys

    Path(sys.argv[2]).write_bytes(pickle.dumps(measure(pickle.loads(Path(sys.argv[1]).read_bytes()))))
