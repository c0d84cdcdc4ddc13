"""Inference speed of teacher vs successor, measured on the same batches in one run."""

from __future__ import annotations

import statistics
import time
from typing import Any


def time_forward(model: Any, batches: list[dict[str, Any]], repeats: int = 3,
                 warmup: int = 1) -> list[float]:
    """Wall-clock seconds of full forward passes over ``batches``, one value per repeat.

    ``batches`` are already on the model's device. ``warmup`` passes over the
    first batch run first and are not timed; CUDA is synchronised around each
    timed pass.
    """
    import torch

    model.eval()
    sync = torch.cuda.synchronize if next(model.parameters()).is_cuda else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(**batches[0])
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            for batch in batches:
                model(**batch)
            sync()
            times.append(time.perf_counter() - t0)
    return times


def compare_speed(teacher: Any, successor: Any, batches: list[dict[str, Any]],
                  repeats: int = 3) -> dict[str, float]:
    """Speed-up of ``successor`` over ``teacher`` on identical batches.

    Repeats are interleaved (teacher, successor, teacher, ...) so that machine
    load affects both alike; the median of each is used.

    Returns:
        ``teacher_seconds`` and ``successor_seconds`` (median seconds per pass
        over all batches), ``speedup`` (teacher / successor) and ``examples``.
    """
    t_times, s_times = [], []
    for i in range(repeats):
        t_times += time_forward(teacher, batches, repeats=1, warmup=1 if i == 0 else 0)
        s_times += time_forward(successor, batches, repeats=1, warmup=1 if i == 0 else 0)
    t, s = statistics.median(t_times), statistics.median(s_times)
    examples = sum(int(b["input_ids"].shape[0]) for b in batches)
    return {"teacher_seconds": t, "successor_seconds": s, "speedup": t / s, "examples": examples}
