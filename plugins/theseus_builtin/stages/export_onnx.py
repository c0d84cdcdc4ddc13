"""``export``'s ONNX formats: the fp32 graph (the first exporter whose graph passes parity,
fused for ONNX Runtime when the fused graph passes too) and its int8 quantisation, each
run by ONNX Runtime over the dev set and checked against PyTorch."""

from __future__ import annotations

import math
import os
from pathlib import Path

from theseus_cli.data import load_tokenized, make_dataloader
from theseus_cli.deploy import onnx as deploy
from theseus_cli.errors import ExportError
from theseus_cli.plugin import StageContext
from theseus_cli.plugin.registry import family_of


def export_onnx(ctx: StageContext, model, tokenizer, loader, reference, formats) -> dict:
    """Write ``onnx/`` (and ``onnx-int8/``), run each with ONNX Runtime over the dev set
    and check it against PyTorch (fp32: logits; int8: dev score).

    Returns:
        format -> ``{"path", "mb", "score", "scores", "parity", ...}``.

    Raises:
        ExportError: a check failed (nothing is published).
    """
    from theseus_cli.data.metrics import score_logits

    task = ctx.task_definition
    names = deploy.input_names(model, tokenizer)
    example = next(iter(loader))
    info: dict[str, dict] = {}
    for fmt in ("onnx", "onnx-int8"):
        if fmt not in formats:
            continue
        folder = ctx.out_dir / fmt
        folder.mkdir()
        tokenizer.save_pretrained(folder)
        model.config.save_pretrained(folder)
        path = folder / deploy.ONNX_FILE
        if fmt == "onnx":
            how, logits, diff = _export_fp32(ctx, model, names, example, path, loader,
                                             reference)
            fp32_logits = logits
        else:  # of the fused graph, when it was fused
            how = {**deploy.quantize_int8(ctx.out_dir / "onnx" / deploy.ONNX_FILE, path),
                   "optimization": info["onnx"]["optimization"]}
            logits, _ = deploy.predict_onnx(deploy.session(path), loader)
        scores = score_logits(task, logits, reference[1])
        entry = {"path": f"{fmt}/{deploy.ONNX_FILE}", "mb": deploy.size_mb(path),
                 "score": scores["score"], "scores": scores, "inputs": names, **how}
        if fmt == "onnx":  # parity checked by _export_fp32
            entry.update(max_abs_diff=diff, parity=f"max abs Δ logit {diff:.1e} vs PyTorch")
        else:
            entry.update(_int8_check(ctx, 100 * info["onnx"]["score"], 100 * scores["score"],
                                     fp32_logits, logits, reference[1]))
        info[fmt] = entry
    return info


def _int8_check(ctx: StageContext, fp32: float, int8: float, fp32_logits, int8_logits,
                labels) -> dict:
    """Judge the int8 graph's dev score (points) against fp32's: accepted within
    ``int8_max_drop``, and beyond it when the drop is within the dev set's noise (the
    paired bootstrap 95% interval of the drop reaches 0: the int8 graph is not shown to
    be worse, :func:`~theseus_cli.data.metrics.score_drop_interval`), with a warning.

    Returns:
        ``score_drop``, ``parity`` and, when the bootstrap ran, ``drop_interval``.

    Raises:
        ExportError: the drop is larger than ``int8_max_drop`` and beyond the noise, or
            the int8 score is not finite.
    """
    from theseus_cli.data.metrics import score_drop_interval

    drop, limit = fp32 - int8, ctx.params.int8_max_drop
    said = f"dev score {abs(drop):.2f} points {'below' if drop >= 0 else 'above'} fp32"
    if drop <= limit:
        return {"score_drop": drop, "parity": said}
    if not math.isfinite(drop):
        raise ExportError(f"int8 ONNX dev score {int8:.2f} against fp32 ONNX {fp32:.2f}: the "
                          "int8 graph's predictions are not finite; nothing was published. "
                          "Export --format hf,onnx")
    low, high = (100 * v for v in score_drop_interval(ctx.task_definition, fp32_logits,
                                                      int8_logits, labels))
    interval = f"paired bootstrap 95% interval of the drop: {low:.2f} to {high:.2f}"
    if not low <= 0:  # NaN too: some resample has no finite score
        raise ExportError(f"int8 ONNX dev score {int8:.2f} is {drop:.2f} points below fp32 "
                          f"ONNX ({fp32:.2f}; int8_max_drop {limit:g}), beyond the dev set's "
                          f"noise ({interval}); nothing was published. Export --format "
                          "hf,onnx, or accept the drop with --int8-max-drop")
    ctx.log.info(f"[yellow]warning: the int8 ONNX dev score is {drop:.2f} points below fp32 "
                 f"(more than int8_max_drop {limit:g}), within the dev set's noise "
                 f"({interval}): exported; judge it on more data (a test split) before you "
                 "deploy it[/]")
    return {"score_drop": drop, "drop_interval": [low, high],
            "parity": f"{said}, within the dev set's noise ({interval})"}


def _export_fp32(ctx: StageContext, model, names, example, path: Path, loader,
                 reference) -> tuple[dict, object, float]:
    """Write the fp32 graph at ``path`` with the first exporter (``onnx_exporter``; ``auto``
    tries torchscript, then dynamo) whose graph passes parity over the dev set, then, with
    ``onnx_fuse``, fuse it for ONNX Runtime when the fused graph passes parity too.

    Returns:
        (what was applied, for the manifest; the kept graph's dev logits, (examples,
        num_labels) or (examples, seq_len, num_labels); their max abs difference from
        PyTorch's).

    Raises:
        ExportError: no exporter wrote a graph that passes parity (each one's reason named).
    """
    p = ctx.params
    reasons = []
    order = deploy.AUTO_ORDER if p.onnx_exporter == "auto" else (p.onnx_exporter,)
    for exporter in order:
        try:
            how = deploy.export_onnx(model, example, names, path, exporter)
        except ExportError as e:
            reasons.append(str(e))
            continue
        logits, _ = deploy.predict_onnx(deploy.session(path), loader)
        diff = logits_difference(logits, reference[0])
        if diff <= p.onnx_tolerance:  # (NaN: never)
            break
        reasons.append(f"the {exporter} graph's logits differ from PyTorch by {diff:g} on the "
                       f"dev set (> onnx_tolerance {p.onnx_tolerance:g}), or are not finite")
        path.unlink(missing_ok=True)
    else:
        raise ExportError(f"fp32 ONNX: {'; '.join(reasons)}; nothing was published")
    how = {"exporter": how["exporter"], "opset": how["opset"],
           "fallback_reason": "; ".join(reasons) or None}
    if reasons:
        ctx.log.info(f"[yellow]{how['fallback_reason']}; used the {how['exporter']} exporter[/]")
    how["optimization"] = None
    if p.onnx_fuse:
        how["optimization"], logits, diff = _optimize(ctx, model, path, loader, reference,
                                                      logits, diff)
    return how, logits, diff


def _optimize(ctx: StageContext, model, path: Path, loader, reference, logits, diff):
    """Replace the graph at ``path`` by ONNX Runtime's fused one when that passes parity.

    Returns:
        (``{"fused": {op: n}}`` or ``{"skipped": reason}``; the kept graph's dev logits and
        their max abs difference from PyTorch's).
    """
    fused_path = path.with_name("fused.onnx")
    heads, width = attention_shape(model)
    try:
        fused = deploy.optimize_graph(path, fused_path, heads, width)
    except ExportError as e:
        ctx.log.info(f"[yellow]{e}; the ONNX graph stays unfused[/]")
        return {"skipped": str(e)}, logits, diff
    fused_logits, _ = deploy.predict_onnx(deploy.session(fused_path), loader)
    fused_diff = logits_difference(fused_logits, reference[0])
    if not fused_diff <= ctx.params.onnx_tolerance:
        fused_path.unlink()
        reason = (f"the fused graph's logits differ from PyTorch by {fused_diff:g} (> "
                  f"onnx_tolerance {ctx.params.onnx_tolerance:g}), or are not finite")
        ctx.log.info(f"[yellow]{reason}; the ONNX graph stays unfused[/]")
        return {"skipped": reason}, logits, diff
    os.replace(fused_path, path)
    return ({"optimizer": "onnxruntime.transformers (bert, level 1)", "fused": fused},
            fused_logits, fused_diff)


def attention_shape(model) -> tuple[int, int]:
    """``(heads, heads × head size)`` shared by every layer's attention (its family's
    :class:`AttentionBlock`), for attention fusion; ``(0, 0)`` when the layers differ or
    the family does not say where its attention is (attention then stays unfused)."""
    try:
        family = family_of(model)
        block = getattr(family, "attention", None)
        shapes = {block.head_counts(layer)[::2] for layer in family.layers(model)} if block \
            else set()
    except Exception:  # noqa: BLE001 - a family without attention anatomy: no fusion
        return 0, 0
    if len(shapes) != 1:
        return 0, 0
    heads, d = shapes.pop()
    return heads, heads * d


def logits_difference(a, b) -> float:
    """max |a - b| over two logit arrays (CPU tensors or NumPy) of shape (batch, num_labels);
    ``nan`` when either holds a NaN or infinite value (a comparison with NaN is never
    "close")."""
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(np.abs(a - b).max())


def split_loader(ctx: StageContext, tokenizer, split: str):
    """Batches (size 32, in file order, dynamic padding, CPU) of one split of the task."""
    ds = load_tokenized(ctx.config, ctx.task_definition, tokenizer, split)
    return make_dataloader(ds, tokenizer, 32, shuffle=False)


def score_test_split(ctx: StageContext, model, tokenizer, done: dict) -> dict[str, dict]:
    """The labelled test split's scores of the PyTorch model and of each ONNX file written
    (a user's task with a labelled test file; evaluate reports the same test metrics): the
    int8 model's quality where the task is judged, not only its dev parity check.

    Args:
        model: the exported PyTorch model (fp32, CPU, eval mode); ``done``: format ->
            entry with ``path`` (relative to the artifact), as ``export_onnx`` returns.

    Returns:
        ``{"pytorch": scores, "onnx": scores, "onnx-int8": scores}`` (the metrics of
        ``score_logits``, fractions) for what was exported; ``{}`` without a labelled test
        split.
    """
    task = ctx.task_definition
    if not getattr(task, "test_has_labels", lambda: False)():
        return {}
    import torch

    from theseus_cli.data.metrics import score_logits

    loader = split_loader(ctx, tokenizer, "test")
    with torch.inference_mode():  # logits (N, num_labels), labels (N,)
        logits, labels = deploy.collect_logits(lambda b: model(**b).logits.numpy(), loader)
    out = {"pytorch": score_logits(task, logits, labels)}
    for fmt in ("onnx", "onnx-int8"):
        if fmt in done:
            logits, _ = deploy.predict_onnx(deploy.session(ctx.out_dir / done[fmt]["path"]),
                                            loader)
            out[fmt] = score_logits(task, logits, labels)
    return out
