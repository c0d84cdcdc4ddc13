"""The tables and the chart of ``theseus benchmark`` (its ``benchmark.json`` report)."""

from __future__ import annotations

from typing import Any

from theseus_cli.errors import PlotError
from theseus_cli.plots import method_chart
from theseus_cli.tables import Column, fitted_table


def _name(row: dict) -> str:
    return row["artifact"].split("/", 1)[1]  # STAGE/vN: the task is in the title


def _cells(report: dict, key: str, fmt: str, with_speedup: bool = False) -> list[list[str]]:
    out = []
    for r in report["rows"]:
        cells = []
        for s in report["shapes"]:
            v = r["shapes"][s][key]
            cell = fmt.format(v)
            if with_speedup:
                cell += f" ({r['speedup'][s]:.2f}×)"
            cells.append(cell)
        out.append(cells)
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _pct(v: Any) -> str:
    return "n/a" if v is None or v != v else f"{100 * v:.2f}"


def _mb(v: Any) -> str:
    return "n/a" if v is None else f"{v:.0f}"


def _file(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _times(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1f}×"


def rows_table(report: dict[str, Any]) -> str:
    """p50 latency in ms and the speed-up over the PyTorch fp32 teacher, per shape: a
    Markdown table (``model``: the model's artifact, ``format``, dev score, params,
    peak MB)."""
    head = ["model", "format", "dev score", "params", "file MB", "× smaller", "peak MB",
            *(f"{s} p50 ms (×)" for s in report["shapes"])]
    body = [[_name(r), r["format"], _pct(r.get("score")),
             "n/a" if not r.get("parameters") else f"{r['parameters'] / 1e6:.1f}M",
             _file(r.get("file_mb")), _times(r.get("smaller")), _mb(r.get("peak_mb")), *cells]
            for r, cells in zip(report["rows"], _cells(report, "p50_ms", "{:.2f}", True), strict=False)]
    return _table(head, body)


def console_table(report: dict[str, Any], width: int = 80, full_table: str = "",
                  keep: tuple[str, ...] = ()) -> Any:
    """A table that fits ``width`` terminal cells (:func:`theseus_cli.tables.fitted_table`):
    per model and format, the dev score, its file's MB and how many times smaller than the
    PyTorch teacher's, peak MB and the p50 latency (ms) with the speed-up over the PyTorch
    fp32 teacher at each shape. When it is too narrow, the shapes not in ``keep`` go first
    (the last first), then peak MB, the sizes, then the score."""
    shapes = report["shapes"]
    columns = [Column("model"), Column("format"), Column("score", "right", len(shapes) + 2),
               Column("MB", "right", len(shapes) + 1.5),
               Column("× smaller", "right", len(shapes) + 1.2),
               Column("peak MB", "right", len(shapes) + 1),
               *(Column(s, "right", None if s in keep else len(shapes) - i)
                 for i, s in enumerate(shapes))]
    rows = [[_name(r), r["format"], _pct(r.get("score")), _file(r.get("file_mb")),
             _times(r.get("smaller")), _mb(r.get("peak_mb")), *cells]
            for r, cells in zip(report["rows"], _cells(report, "p50_ms", "{:.1f}", True), strict=False)]
    return fitted_table(f"{report['task']}: p50 latency per call, ms (speed-up over the "
                        "PyTorch fp32 teacher)", columns, rows, width, full_table)


def render_markdown(report: dict[str, Any]) -> str:
    """``benchmark.md``: the machine, the p50 table with speed-ups, throughput, p90 and
    which method each model is."""
    m, s = report["machine"], report["settings"]
    names = [[_name(r), r["format"]] for r in report["rows"]]
    methods = dict.fromkeys(f"- `{_name(r)}`: {r['model']}" for r in report["rows"])
    iso = ("each model in a fresh process" if s["isolate"]
           else "all models in one process (peak MB not per model)")
    return "\n\n".join([
        f"### {report['task']}: latency and throughput (`theseus benchmark`)",
        f"Machine: {m['cpu']}, {m['threads']} threads ({m['cpus']} available); PyTorch on "
        f"{m['device']}, ONNX Runtime on the CPU; torch {m['torch']}, onnxruntime "
        f"{m['onnxruntime']}. {s.get('rounds', 1)} interleaved round(s) (every model, then "
        "again), each model's p50 the median of its rounds' p50s; warm-up "
        f"({s['warmup']} calls per round) excluded; at least {s['min_iters']} calls per round "
        f"and {s['min_seconds']} s per model and shape in all; {iso}. "
        "Shapes: bB×sS = batch B of S tokens (random ids, no padding); dev = real dev "
        "batches of 32 (dynamic padding). (×) = speed-up over the PyTorch fp32 teacher.",
        "**p50 latency per call, ms (speed-up)**\n\n" + rows_table(report),
        "**Throughput, examples per second**\n\n" + _table(
            ["model", "format", *report["shapes"]],
            [n + c for n, c in zip(names, _cells(report, "throughput", "{:.1f}"), strict=False)]),
        "**Spread of the p50 across rounds, % of the median (max − min)**\n\n" + _table(
            ["model", "format", *report["shapes"]],
            [n + c for n, c in zip(names, _cells(report, "spread_pct", "{:.1f}"), strict=False)]),
        "**p90 latency per call, ms**\n\n" + _table(
            ["model", "format", *report["shapes"]],
            [n + c for n, c in zip(names, _cells(report, "p90_ms", "{:.2f}"), strict=False)]),
        "Models:\n\n" + "\n".join(methods)]) + "\n"


def charts(report: dict[str, Any], out: Any, log: Any) -> list[str]:
    """``chart_TASK.png``: dev score against the speed-up on dev batches (else the
    largest synthetic shape) and against parameters, one point per model and format.
    A plot failure is reported, never fatal. Returns the files written."""
    shape = "dev" if "dev" in report["shapes"] else report["shapes"][-1]
    rows = [{"method": ("teacher" if r["role"] == "teacher" and r["format"] == "pytorch fp32"
                        else f"{r['model']}") + f" · {r['format']}",
             "parameters": r.get("parameters"),
             "score": {"median": r.get("score")}, "speedup": {"median": r["speedup"][shape]}}
            for r in report["rows"]]
    name = f"chart_{report['task']}.png"
    try:
        drawn = method_chart(report["task"], rows, out / name,
                             score_label=f"dev score (speed-up on {shape} batches)")
        return [name] if drawn else []
    except PlotError as e:
        log.info(f"[yellow]{e}[/]")
        return []
