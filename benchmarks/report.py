"""What the benchmark scripts share: the machine line and their tables (imported as
``report`` when a script runs as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import os

from theseus_cli.deploy.latency import cpu_model  # noqa: F401 - one home, re-exported for the scripts


def embedded_mrpc(threads: int):
    """What the MRPC scripts start from: offline hub settings, ``threads`` torch threads,
    seed 0, and the embedded teacher with a new MRPC head.

    Returns:
        ``(task, teacher, tokenizer)``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    from theseus_cli.data.glue import get_task
    from theseus_cli.model.loading import load_predecessor

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    task = get_task("MRPC")
    teacher, tokenizer = load_predecessor("embedded", task)
    return task, teacher, tokenizer


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """``rows`` under ``headers``: Markdown, or columns padded for a terminal."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=False)]
    fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=False))  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])
