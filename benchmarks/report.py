"""What the benchmark scripts share: the machine line and their tables (imported as
``report`` when a script runs as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

from theseus_cli.latency import cpu_model  # noqa: F401 - one home, re-exported for the scripts


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """``rows`` under ``headers``: Markdown, or columns padded for a terminal."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(headers, *rows)]
    fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])
