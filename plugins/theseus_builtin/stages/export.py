"""``export``: a model in the formats it is deployed in, each checked against PyTorch.

Formats (``--format``, any combination, each in a directory of its name):

- ``hf`` (``model/``): safetensors + tokenizer + config that the task kind's stock Auto
  class (``AutoModelForSequenceClassification``, ``AutoModelForTokenClassification``) loads (restructured
  successor types: the theseus loader); reloaded and compared, max |Δ logit| ≤ 1e-5.
- ``onnx`` (``onnx/model.onnx``): fp32 graph by ``torch.onnx`` (see
  :mod:`theseus_cli.deploy.onnx` for why not Optimum), fused for ONNX Runtime
  (``onnx_fuse``); max |Δ logit| against PyTorch over the whole dev set ≤
  ``onnx_tolerance``, for the plain graph and again for the fused one (which is kept
  only when it passes).
- ``onnx-int8`` (``onnx-int8/model.onnx``): ONNX Runtime dynamic quantisation of
  the fp32 graph after ``quant_pre_process``; its dev score may be at most
  ``int8_max_drop`` points below fp32.

A check that fails publishes nothing. The manifest records every parity number, the
dev score per format and the size per format; a model card (``README.md``, with
``model-index``, the recipe and how to load each format) goes beside them.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_builtin.stages import model_card
from theseus_builtin.stages.export_onnx import (
    export_onnx,
    logits_difference,
    score_test_split,
    split_loader,
)
from theseus_builtin.stages.method_table import task_rows
from theseus_cli.data.glue import GlueTask
from theseus_cli.deploy import latency
from theseus_cli.deploy.latency import cpu_threads
from theseus_cli.deploy.onnx import (
    EXPORTERS,
    FORMATS,
    ONNX_FORMATS,
    collect_logits,
    parse_formats,
    require_onnx,
    size_mb,
)
from theseus_cli.errors import ConfigError, ExportError
from theseus_cli.model import loading as models
from theseus_cli.plugin import CheckContext, Stage, StageContext, StageResult, param
from theseus_cli.plugin.registry import family_of, kind_of, successor_stages

TOLERANCE = 1e-5  # max |logit difference| accepted between theseus and the stock reload
TEACHER = "finetune-teacher"


def exported_model(store: Any, export: Any) -> Any:
    """The artifact whose model ``export`` (an export version) exported: recorded in its
    manifest, else (exports before formats) the successor in its lineage."""
    m = export.manifest
    label = m.get("info", {}).get("model_artifact")
    if label:
        return store.get(*label.split("/"))
    return store.lineage(export, m.get("params", {}).get("successor", "finetune-successor"))


def onnx_exports(store: Any, task: str, models: set[str]) -> dict[str, Any]:
    """The newest export holding an ONNX file of each of ``models`` (full labels,
    ``MRPC/trim-vocab/v6``) among ``task``'s exports: model label -> export artifact
    (its metrics ``onnx_mb``, ``onnx_int8_mb``: the files' sizes in MB). Models never
    exported to ONNX are absent."""
    newest: dict[str, Any] = {}
    for art in reversed(store.versions(task, "export")):
        metrics = art.manifest.get("metrics") or {}
        if "onnx_mb" not in metrics and "onnx_int8_mb" not in metrics:
            continue
        label = exported_model(store, art).label
        if label in models:
            newest.setdefault(label, art)
    return newest


class Export(Stage):
    """Exports the latest evaluated successor (or the teacher) in the formats asked
    for, checks each against the model inside theseus, and writes a model card."""

    name = "export"
    help = "export the successor (or teacher) as Hugging Face, ONNX and int8 ONNX models"
    inputs = ("evaluate",)
    summary_metrics = ("logits_max_abs_diff", "onnx_logits_max_abs_diff", "onnx_int8_score")

    @dataclass
    class Params:
        format: str = param("hf", "comma-separated formats, any combination of "
                                  f"{', '.join(FORMATS)}")
        output: str | None = param(None, "also copy the export (one directory per format, "
                                         "model card) to this new directory (must not exist); "
                                         "null: only the artifact")
        check_examples: int = param(64, "dev examples whose logits are compared after the "
                                        "hf reload", min=1)
        onnx_tolerance: float = param(1e-4, "largest max |logit difference| accepted between "
                                            "fp32 ONNX and PyTorch over the dev set", min=0)
        int8_max_drop: float = param(1.0, "largest drop of the dev score (points) accepted "
                                          "from fp32 ONNX to int8", min=0)
        onnx_exporter: str = param("auto", "torch.onnx exporter: torchscript (eager "
                                           "attention, fused by --onnx-fuse), dynamo "
                                           "(torch.export), auto (torchscript, else dynamo: "
                                           "the first whose graph passes parity)",
                                   choices=EXPORTERS)
        onnx_fuse: bool = param(True, "fuse the fp32 graph for ONNX Runtime (attention, "
                                      "LayerNorm, GELU; onnxruntime.transformers) when the "
                                      "fused graph passes parity; --no-onnx-fuse keeps "
                                      "standard ONNX operators only, for other runtimes")
        card_speed: bool = param(True, "time the PyTorch teacher and each exported format "
                                       "(batch 1 and 32 of 128 tokens, CPU) for the model "
                                       "card's speed table")
        successor: str = param("finetune-successor", "export the latest evaluated successor "
                               "of this stage: finetune-successor (Theseus), truncate, distill, "
                               "...; finetune-teacher exports the teacher; --from evaluate=vN "
                               "picks one evaluation instead")

    def inputs_for(self, params, store=None, task=None) -> tuple[str, ...]:  # noqa: D102 - see Stage.inputs_for
        return (TEACHER,) if params.successor == TEACHER else ("evaluate",)

    def accepts_input(self, name, manifest, params) -> bool:  # noqa: D102 - see Stage
        if name != "evaluate":
            return True
        return manifest.get("params", {}).get("successor", "finetune-successor") == params.successor

    def on_up_to_date(self, artifact, params, say) -> None:
        """``--output DIR`` emptied or removed since the export: written again."""
        if params.output and _empty_or_missing(Path(params.output)):
            copy_to(artifact.path, Path(params.output))
            say(f"{params.output} was empty or missing: copied {artifact.label} there again")

    def choose_input(self, name, accepted, store, params):  # noqa: D102 - see Stage
        if name != "evaluate":
            return None
        return top_ranked(store, [a for a in accepted
                                  if not (a.manifest.get("params") or {}).get("modules")])

    def check(self, ctx: CheckContext) -> None:
        """``--format`` names known formats; ONNX formats have their packages installed."""
        try:
            formats = parse_formats(ctx.params.format)
        except ConfigError as e:
            raise ConfigError(f"{ctx.setting('format')}: {e}") from None
        if "onnx-int8" in formats and "onnx" not in formats:
            raise ConfigError(f"{ctx.setting('format')}: onnx-int8 is checked against the fp32 "
                              "graph; add onnx (e.g. hf,onnx,onnx-int8)")
        if set(formats) & set(ONNX_FORMATS):
            require_onnx(f"{ctx.setting('format')}")
        if ctx.params.output:
            check_output(Path(ctx.params.output), ctx.setting("output"))
        accepted = [*successor_stages(), TEACHER]
        if ctx.params.successor not in accepted:
            raise ConfigError(f"{ctx.setting('successor')}: not a stage that produces a model "
                              f"to export; accepted: {', '.join(accepted)}")

    def run(self, ctx: StageContext) -> StageResult:
        import torch

        from theseus_cli.data.metrics import score_logits

        task, p = ctx.task_definition, ctx.params
        formats = parse_formats(p.format)
        if p.successor == TEACHER:
            model_art, evaluation = ctx.inputs[TEACHER], None
        else:
            evaluation = ctx.inputs["evaluate"]
            model_art = ctx.lineage(evaluation, evaluation.manifest.get("params", {}).get(
                "successor", "finetune-successor"))
        model, tokenizer = ctx.load_model(model_art)
        model = model.float().cpu().eval()
        loader = split_loader(ctx, tokenizer, task.dev_splits[0])  # the first dev split
        with torch.inference_mode():  # PyTorch fp32 logits (N, num_labels), labels (N,)
            reference = collect_logits(lambda batch: model(**batch).logits.numpy(), loader)
        scores = {"pytorch": score_logits(task, *reference)}
        metrics = {"pytorch_score": scores["pytorch"]["score"]}
        restructured = False
        out = ctx.out_dir
        done: dict[str, dict] = {}
        if "hf" in formats:
            metrics["logits_max_abs_diff"], restructured, form = _export_hf(
                ctx, model, tokenizer, loader)
            done["hf"] = {"path": models.MODEL_DIR, "mb": size_mb(out / models.MODEL_DIR),
                          **({"stock_form": form} if form else {}),
                          "score": scores["pytorch"]["score"],
                          "parity": f"max abs Δ logit {metrics['logits_max_abs_diff']:.1e}"}
        if "onnx" in formats:
            onnx_info = export_onnx(ctx, model, tokenizer, loader, reference, formats)
            for fmt, info in onnx_info.items():
                done[fmt] = info
                scores[fmt] = info.pop("scores")
                metrics[f"{fmt.replace('-', '_')}_score"] = info["score"]
            metrics["onnx_logits_max_abs_diff"] = onnx_info["onnx"]["max_abs_diff"]
            if "onnx-int8" in onnx_info:
                metrics["int8_score_drop"] = onnx_info["onnx-int8"]["score_drop"]
        for fmt, info in done.items():
            metrics[f"{fmt.replace('-', '_')}_mb"] = info["mb"]
        test = score_test_split(ctx, model, tokenizer, done) if "onnx" in formats else {}
        for fmt, s in test.items():  # pytorch_test_score, onnx_int8_test_score, ...
            metrics[f"{fmt.replace('-', '_')}_test_score"] = s["score"]
        if test:
            ctx.log.info("test split score: " + ", ".join(
                f"{fmt} {100 * s['score']:.2f}" for fmt, s in test.items()))
        speed = _speed_table(ctx, model_art, done) if p.card_speed else None
        source = evaluation or model_art
        card = model_card.render(
            task=task.name, glue=isinstance(task, GlueTask),
            predecessor=models.base_model_name(ctx.config.model), role=(
                "teacher" if evaluation is None else "successor"),
            metrics=evaluation.manifest["metrics"] if evaluation else scores["pytorch"],
            scores={k: v for k, v in scores["pytorch"].items() if k != "score"},
            method=source.manifest.get("info", {}).get("method", "theseus") if evaluation
            else "teacher", ancestors=ctx.store.ancestors(source), formats=done,
            restructured=restructured, speed=speed, model_class=kind_of(task).model_class)
        (out / "README.md").write_text(card)
        for fmt in done:
            (out / done[fmt]["path"].split("/")[0] / "README.md").write_text(card)
        if p.output:
            copy_to(out, Path(p.output))
            ctx.log.info(f"copied to {p.output}")
        ctx.log.info(_summary(done))
        return StageResult(metrics=metrics, info={
            "successor_artifact": model_art.name, "model_artifact": model_art.label,
            "formats": done, "scores": scores, "test_scores": test,
            "layers": models.num_layers(model),
            "speed": speed, "output": p.output})


def top_ranked(store, evaluations: list) -> tuple[object, str] | None:
    """The evaluation of the successor that ``evaluate``'s method table ranks first: the
    variant with the best median dev score over its seeds, and of its seeds the one with
    the best dev score; with the sentence that says so. None without evaluations."""
    if not evaluations:
        return None
    rows = [r for r in task_rows(store, evaluations)[1:-1]
            if r.get("artifacts") and r["score"]["median"] is not None]
    if not rows:
        return None
    best = max(rows, key=lambda r: r["score"]["median"])
    evs = [store.get(*label.split("/")) for label in best["artifacts"]]
    top = max(evs, key=lambda e: e.manifest["metrics"].get("successor_score") or -math.inf)
    n = best["score"]["n"]
    others = len(rows) - 1
    return top, (f"the successor ranked first in {top.task}'s method table ("
                 f"{best['method']}: median dev score {100 * best['score']['median']:.2f} over "
                 f"{n} seed{'s' if n != 1 else ''}"
                 + (f", ahead of {others} other method{'s' if others != 1 else ''}"
                    if others else "")
                 + f"); its best seed's successor, "
                 f"{top.manifest.get('info', {}).get('successor_artifact', '?')}, scored "
                 f"{100 * top.manifest['metrics']['successor_score']:.2f}. Pick another with "
                 "--from evaluate=vN")


def _speed_table(ctx: StageContext, model_art, done: dict) -> dict:
    """p50 latency (ms) of the PyTorch fp32 teacher, of this model in PyTorch fp32 and in
    each exported ONNX format, at batch 1 and 32 of 128 tokens, on the CPU, in this
    process (``theseus benchmark`` measures more shapes, real dev batches and memory).

    Returns:
        ``{"machine": str, "threads": n, "rows": [{"model", "format", "p50_ms": {shape:
        ms}, "speedup": {shape: ×}}]}``: speed-ups over the PyTorch teacher.
    """
    from transformers import AutoConfig

    teacher = ctx.lineage(model_art, TEACHER)
    vocab = min(AutoConfig.from_pretrained(a.file(models.MODEL_DIR)).vocab_size
                for a in (teacher, model_art))  # ids every model reads (a trimmed vocabulary)
    shapes = latency.synthetic_shapes(vocab, [1, 32], [128])
    runs = [("teacher", "pytorch fp32", "pytorch", teacher.file(models.MODEL_DIR))]
    role = "teacher" if model_art.stage == TEACHER else "successor"
    if role == "successor":
        runs.append((role, "pytorch fp32", "pytorch", model_art.file(models.MODEL_DIR)))
    runs += [(role, fmt, "onnx", ctx.out_dir / info["path"])
             for fmt, info in done.items() if fmt != "hf"]
    threads, rows = cpu_threads(), []
    for who, fmt, runtime, path in runs:
        result = latency.measure(latency.Job(runtime, str(path), "cpu", threads, shapes,
                                             warmup=2, min_iters=3, min_seconds=0.5))
        rows.append({"model": who, "format": fmt,
                     "p50_ms": {s: r["p50_ms"] for s, r in result["shapes"].items()}})
    for r in rows:
        r["speedup"] = {s: rows[0]["p50_ms"][s] / ms for s, ms in r["p50_ms"].items()}
    return {"machine": latency.cpu_model(), "threads": threads, "rows": rows}


def _export_hf(ctx: StageContext, model, tokenizer, loader) -> tuple[float, bool, str | None]:
    """Write ``model/`` (a restructured successor in its family's stock form where it has
    one, :meth:`ModelFamily.stock_form`), reload it as a user would and compare logits
    with ``model``'s on the first ``check_examples`` dev examples. Returns (max |Δ logit|,
    restructured: the theseus loader is needed, the stock form's line or None).

    Raises:
        ExportError: the reloaded model's logits differ by more than :data:`TOLERANCE`.
    """
    import torch

    out = ctx.out_dir / models.MODEL_DIR
    form = (family_of(model).stock_form(model)
            if getattr(model, "theseus_successor", None) else None)
    models.save(form[0] if form else model, tokenizer, out)
    restructured = (out / models.SUCCESSOR_FILE).is_file()
    stock = models.auto_class(kind_of(ctx.task_definition).model_class)  # as a user loads it
    reloaded = (models.load_restructured(out) if restructured
                else stock.from_pretrained(out)).eval()
    diff, seen = 0.0, 0
    with torch.inference_mode():
        for batch in loader:  # the first check_examples dev examples
            batch = {k: v for k, v in batch.items() if k != "labels"}
            d = logits_difference(model(**batch).logits, reloaded(**batch).logits)
            diff = d if d != d or d > diff else diff  # a NaN stays
            seen += len(batch["input_ids"])
            if seen >= ctx.params.check_examples or diff != diff:
                break
    if not diff <= TOLERANCE:  # NaN-aware: a NaN difference fails too
        raise ExportError(f"exported model's logits differ by {diff:g} (> {TOLERANCE:g}) "
                          "from the model inside theseus, or are not finite; nothing "
                          "was published")
    return diff, restructured, form[1] if form else None


def _summary(done: dict) -> str:
    return "exported: " + ", ".join(
        f"{fmt} ({info['path']}, {info['mb']:.1f} MB, dev score {100 * info['score']:.2f})"
        for fmt, info in done.items())


def check_output(dest: Path, setting: str) -> None:
    """``--output`` must name a new directory whose nearest existing parent is a writable
    directory (checked before any stage runs, then again by :func:`copy_to`).

    Raises:
        ConfigError: naming ``setting`` (the option as the user set it) and the problem.
    """
    dest = dest.expanduser().resolve()
    if (dest.exists() or dest.is_symlink()) and not _empty_or_missing(dest):
        raise ConfigError(f"{setting}: {str(dest)!r} already exists and is not empty; export "
                          "copies into a new (or empty) directory: choose another path or "
                          "remove it")
    parent = dest.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{setting}: {str(parent)!r} is a file, so {str(dest)!r} cannot be "
                          "created below it; choose a path inside a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{setting}: cannot create {str(dest)!r}: {str(parent)!r} is not "
                          "writable; choose a writable location")


def copy_to(src: Path, dest: Path) -> None:
    """Copy the export ``src`` (its format directories and model card, not the manifest)
    to the new (or empty) directory ``dest`` atomically (temp dir, then rename).

    Raises:
        ExportError: ``dest`` exists and is not empty.
    """
    dest = dest.expanduser().resolve()
    if not _empty_or_missing(dest):
        raise ExportError(f"export output {str(dest)!r} already exists and is not empty; "
                          "choose a new directory")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("manifest.json", ".manifest*",
                                                             "log.jsonl", ".*"))
    if dest.is_dir():
        dest.rmdir()  # empty: replaced by the copy
    os.rename(tmp, dest)


def _empty_or_missing(path: Path) -> bool:
    """Whether ``path`` does not exist, or is an empty directory (not a link)."""
    path = path.expanduser()
    if path.is_symlink():
        return False
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))
