"""``benchmark``: latency, throughput and peak memory of the teacher and every exported
model, in PyTorch fp32 and in each exported format (ONNX, int8 ONNX), in one run.

Every model runs on the same inputs, on the same machine, one after the other, so
the ratios are comparable: synthetic batches (every batch size × sequence length
asked for, random token ids, no padding) and real dev batches (batch 32, dynamic
padding). Speed-ups are the PyTorch fp32 teacher's p50 latency over the model's at
the same shape. The artifact holds ``benchmark.json`` (machine, settings, every
number), ``benchmark.md`` and ``chart_TASK.png`` (dev score against speed-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_builtin.stages.benchmark_report import (
    charts,
    console_table,
    render_markdown,
)
from theseus_builtin.stages.export import exported_model
from theseus_cli.data import load_tokenized, make_dataloader
from theseus_cli.deploy import latency
from theseus_cli.deploy.latency import Shape, cpu_threads, synthetic_shapes
from theseus_cli.deploy.onnx import require_onnx, weights_mb
from theseus_cli.errors import ArtifactError, ConfigError
from theseus_cli.model.loading import MODEL_DIR
from theseus_cli.model.vocabulary import vocabulary_key
from theseus_cli.plugin import CheckContext, Stage, StageContext, StageResult, param
from theseus_cli.store import jsonio
from theseus_cli.store.artifacts import parse_version

TEACHER = "finetune-teacher"
PYTORCH = "pytorch fp32"
DEV = "dev"
#: shapes whose speed-ups become metrics (and the README's table)
HEADLINE = ("b1×s128", "b32×s128", DEV)


def _ints(text: str, what: str) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``. Raises ConfigError naming ``what``."""
    try:
        values = [int(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ConfigError(f"{what} {text!r}: expected comma-separated positive integers, "
                          "e.g. 1,8,32")
    return values


def _versions(text: str) -> list[int]:
    """``"v2,5"`` -> ``[2, 5]``. Raises ConfigError naming the bad value."""
    try:
        found = [parse_version(v.strip()) for v in str(text).split(",") if v.strip()]
    except ArtifactError:
        found = []
    if not found:
        raise ConfigError(f"--exports {text}: accepted: latest, or export versions like v2,v5")
    return found


class Benchmark(Stage):
    """Measures every exported model of the task (the newest export of each, or
    ``--exports v2,v5``) and the teacher, in PyTorch and in each exported format."""

    name = "benchmark"
    help = ("latency (p50/p90 ms), throughput and peak memory of the teacher and each "
            "exported model, PyTorch and every exported format, in one run")
    inputs = ("export",)
    summary_metrics = ()

    @dataclass
    class Params:
        batch_sizes: str = param("1,8,32", "comma-separated batch sizes of the synthetic inputs")
        seq_lengths: str = param("32,128", "comma-separated sequence lengths (tokens) of the "
                                           "synthetic inputs")
        dev_batches: int = param(8, "real dev batches (32 examples, dynamic padding) timed as "
                                    "the shape `dev`; 0: none", min=0)
        rounds: int = param(3, "interleaved rounds (teacher, successor, ..., then again): each "
                               "model is timed once per round, and its p50 is the median of "
                               "its rounds' p50s, their spread reported beside it", min=1)
        min_seconds: float = param(1.0, "timed seconds per model and shape, at least, over all "
                                        "rounds (after the warm-up)", min=0)
        min_iters: int = param(5, "timed calls per model and shape, at least", min=1)
        warmup: int = param(3, "untimed calls per model and shape before timing", min=0)
        threads: int | None = param(None, "CPU threads of PyTorch and ONNX Runtime; null: "
                                          "the CPUs this process may use", min=1)
        isolate: bool = param(True, "measure each model in a fresh process (its own peak "
                                    "memory, no caches warmed by another model)")
        exports: str = param("latest", "the exports measured: latest (the newest export of "
                                       "each exported model of the task) or versions v2,v5")

    def inputs_for(self, params, store=None, task=None) -> tuple[str, ...]:
        """What is measured, by full label: with ``exports: latest``, the newest export of
        each exported model and the newest evaluation of every other evaluated successor
        (PyTorch only: a baseline or seed nobody exported); ``("export",)`` (run it first)
        when the task has neither. With versions, those exports only."""
        if params.exports != "latest":
            return tuple(f"{task}/export/v{n}" for n in _versions(params.exports))
        if store is None or task is None:
            return self.inputs
        newest: dict[str, str] = {}
        for art in reversed(store.versions(task, "export")):
            newest.setdefault(exported_model(store, art).label, art.label)
        for art in reversed(store.versions(task, "evaluate")):
            successor = art.manifest.get("info", {}).get("successor_artifact")
            if successor and successor.count("/") == 2:
                newest.setdefault(successor, art.label)
        return tuple(reversed(newest.values())) or self.inputs

    def check(self, ctx: CheckContext) -> None:
        """Shapes are positive integers (``--exports`` is checked by :meth:`inputs_for`,
        which runs first)."""
        _ints(ctx.params.batch_sizes, ctx.setting("batch_sizes"))
        lengths = _ints(ctx.params.seq_lengths, ctx.setting("seq_lengths"))
        limit = ctx.model.max_positions
        if limit is not None and max(lengths) > limit:
            raise ConfigError(
                f"{ctx.setting('seq_lengths')}: {max(lengths)} tokens exceed the {limit} "
                f"positions of the model ({ctx.model.source}); accepted: lengths up to {limit}")

    def run(self, ctx: StageContext) -> StageResult:
        p = ctx.params
        exports = list(ctx.inputs.values())  # exports, and evaluations of the others
        models = _models(ctx, exports)
        onnx = sorted({m["format"] for m in models if m["format"] != PYTORCH})
        if onnx:  # before any model is timed
            require_onnx(f"benchmark (the {', '.join(onnx)} exports, run by ONNX Runtime)",
                         ("onnxruntime",), instead="measure exports made with --format hf "
                                                   "only (--exports vN)")
        shapes_of = _shapes(ctx, [m["path"] for m in models])
        shapes = shapes_of(models[0]["path"])
        threads = p.threads or cpu_threads()
        rounds: list[list[dict]] = [[] for _ in models]  # model -> its result per round
        for r in range(p.rounds):  # interleaved: machine load falls on every model alike
            for m, results in zip(models, rounds, strict=True):
                onnx = m["format"] != PYTORCH
                job = latency.Job(runtime="onnx" if onnx else "pytorch", path=str(m["path"]),
                                  device="cpu" if onnx else ctx.runtime.device_name,
                                  threads=threads, shapes=shapes_of(m["path"]),
                                  warmup=p.warmup, min_iters=p.min_iters,
                                  min_seconds=p.min_seconds / p.rounds)
                ctx.log.info(f"timing {m['model']} · {m['format']} (round {r + 1}/{p.rounds})")
                results.append(latency.measure_isolated(job) if p.isolate
                               else latency.measure(job))
        rows = []
        for m, results in zip(models, rounds, strict=True):
            rows.append({**{k: v for k, v in m.items() if k != "path"}, "path": str(m["path"]),
                         "device": "cpu" if m["format"] != PYTORCH else ctx.runtime.device_name,
                         **latency.merge_rounds(results)})
            if not p.isolate:
                rows[-1]["peak_mb"] = None  # one process for all: not this model's
        base = next(r for r in rows if r["role"] == "teacher" and r["format"] == PYTORCH)
        for r in rows:  # its size on disk, and how many times smaller than the teacher's
            r["file_mb"] = weights_mb(r["path"])
            r["smaller"] = base["file_mb"] / r["file_mb"] if r["file_mb"] else None
        for r in rows:
            r["speedup"] = {s: base["shapes"][s]["p50_ms"] / r["shapes"][s]["p50_ms"]
                            for s in r["shapes"]}
        import onnxruntime
        import torch

        report = {"task": ctx.task, "machine": {
            "cpu": latency.cpu_model(), "threads": threads, "cpus": cpu_threads(),
            "device": ctx.runtime.device_name, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__},
            "settings": {k: getattr(p, k) for k in ("batch_sizes", "seq_lengths", "dev_batches",
                                                    "rounds", "min_seconds", "min_iters",
                                                    "warmup", "isolate")},
            "shapes": [s.name for s in shapes], "rows": rows}
        out = ctx.out_dir
        (out / "benchmark.json").write_text(jsonio.dumps(report, indent=2) + "\n")
        markdown = render_markdown(report)
        (out / "benchmark.md").write_text(markdown)
        ctx.log.info(console_table(report, ctx.log.console.width,
                                   "benchmark.md of this version", keep=HEADLINE))
        metrics = {f"{r['artifact']}:{r['format']}:{s}:speedup": r["speedup"][s]
                   for r in rows if r is not base for s in HEADLINE if s in r["speedup"]}
        return StageResult(metrics=metrics, info={
            "exports": [a.label for a in exports], "machine": report["machine"],
            "charts": charts(report, out, ctx.log)})


def _models(ctx: StageContext, exports: list) -> list[dict]:
    """What is measured: the PyTorch fp32 teachers first, then per export its PyTorch
    model (a successor's) and each exported ONNX format, per evaluation (a successor
    nobody exported) its PyTorch model; each with its dev score (from the export's
    checks, else the evaluation) and parameter count (from its evaluation)."""
    teachers: dict[str, dict] = {}  # teacher label -> its PyTorch row
    rows = []
    for exp in exports:
        info = exp.manifest.get("info", {})
        if exp.stage == "evaluate":  # a successor nobody exported: PyTorch only
            rows.append(_evaluated(ctx, exp, teachers))
            continue
        formats, scores = info.get("formats") or {}, info.get("scores") or {}
        model_art = exported_model(ctx.store, exp)
        t = _teacher(ctx, teachers, model_art)
        row = {"artifact": model_art.label}
        if model_art.stage == TEACHER:
            row.update(role="teacher", model="teacher", parameters=None)
            t["score"] = t["score"] or scores.get("pytorch", {}).get("score")
        else:
            ev = ctx.lineage(exp, "evaluate").manifest
            row.update(role="successor", model=ev.get("info", {}).get("method", model_art.label),
                       parameters=ev["metrics"].get("successor_parameters"))
            _learn(t, ev["metrics"])
            rows.append({**row, "format": PYTORCH, "score": scores.get("pytorch", {}).get("score"),
                         "path": exp.file(formats["hf"]["path"]) if "hf" in formats
                         else model_art.file(MODEL_DIR)})
        rows += [{**row, "format": fmt, "score": f.get("score"), "path": exp.file(f["path"])}
                 for fmt, f in formats.items() if fmt != "hf"]
    for r in rows:
        if r["role"] == "teacher":  # the teacher's ONNX formats: its size
            r["parameters"] = teachers[r["artifact"]]["parameters"]
    return [*teachers.values(), *rows]


def _teacher(ctx: StageContext, teachers: dict, model_art) -> dict:
    """The PyTorch row of ``model_art``'s teacher in ``teachers`` (label -> row), added
    on first sight."""
    teacher = ctx.lineage(model_art, TEACHER)
    return teachers.setdefault(teacher.label, {
        "role": "teacher", "model": "teacher", "artifact": teacher.label, "format": PYTORCH,
        "score": None, "parameters": None, "path": teacher.file(MODEL_DIR)})


def _learn(teacher_row: dict, evaluation_metrics: dict) -> None:
    """Fill the teacher's dev score and size from an evaluation, where still unknown."""
    teacher_row["score"] = teacher_row["score"] or evaluation_metrics.get("teacher_score")
    teacher_row["parameters"] = (teacher_row["parameters"]
                                 or evaluation_metrics.get("teacher_parameters"))


def _evaluated(ctx: StageContext, evaluation, teachers: dict) -> dict:
    """The PyTorch row of an evaluated successor (its score and size from the
    evaluation), adding its teacher to ``teachers`` (label -> PyTorch row)."""
    m = evaluation.manifest
    successor = ctx.store.get(*m["info"]["successor_artifact"].split("/"))
    _learn(_teacher(ctx, teachers, successor), m["metrics"])
    return {"role": "successor", "artifact": successor.label, "format": PYTORCH,
            "model": m.get("info", {}).get("method", successor.label),
            "score": m["metrics"].get("successor_score"),
            "parameters": m["metrics"].get("successor_parameters"),
            "path": successor.file(MODEL_DIR)}


def _shapes(ctx: StageContext, paths: list) -> Any:
    """``shapes_of(path)``: the shapes a model (its directory, or its ONNX file in one) is
    timed on: the synthetic shapes (every batch size × sequence length; token ids drawn
    once, seed 0, below the smallest vocabulary of ``paths``, so that every model reads
    the same ids) and the real dev batches as the model's own tokenizer tokenises them
    (a trimmed vocabulary has its own ids), as int64 numpy arrays."""
    import numpy as np
    from transformers import AutoConfig, AutoTokenizer

    p = ctx.params

    def folder(path) -> Path:
        path = Path(path)
        return path if path.is_dir() else path.parent

    vocab = min(AutoConfig.from_pretrained(folder(path)).vocab_size for path in paths)
    synthetic = synthetic_shapes(vocab, _ints(p.batch_sizes, "batch_sizes"),
                                 _ints(p.seq_lengths, "seq_lengths"))
    dev_by_vocabulary: dict = {}

    def shapes_of(path) -> list:
        if not p.dev_batches:
            return synthetic
        task = ctx.task_definition
        tokenizer = AutoTokenizer.from_pretrained(folder(path))
        key = vocabulary_key(tokenizer)
        if key not in dev_by_vocabulary:
            dev = load_tokenized(ctx.config, task, tokenizer, task.dev_splits[0])
            batches = []
            for batch in make_dataloader(dev, tokenizer, 32, shuffle=False):
                batch.pop("labels")
                batch.setdefault("token_type_ids", batch["input_ids"] * 0)
                batches.append({k: v.numpy().astype(np.int64) for k, v in batch.items()})
                if len(batches) >= p.dev_batches:
                    break
            dev_by_vocabulary[key] = Shape(DEV, batches)
        return [*synthetic, dev_by_vocabulary[key]]

    return shapes_of
