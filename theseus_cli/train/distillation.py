"""Vanilla knowledge distillation (Hinton et al. 2015) and the teacher-logit cache.

The loss is the task kind's (``TaskKind.distill_loss``); for classification, per batch::

    (1 − α) · CE(z_s, y) + α · T² · KL( softmax(z_t / T) ‖ softmax(z_s / T) )

for regression (STS-B), where logits are scores::

    (1 − α) · MSE(z_s, y) + α · MSE(z_s, z_t)

and for token classification the same as classification per token (the KL averaged
over real tokens, the cross-entropy over tagged words).

``z_s`` are the student's (successor's) logits, ``z_t`` the teacher's, T the
temperature and α the distillation weight. The paper's ``distill`` baseline
follows Sun et al. (2019); BERT-of-Theseus itself uses the task loss only
(α = 0), and α > 0 is offered on ``replace`` and ``finetune-successor`` as an
option beyond the paper.

Teacher logits on the training set are computed once per teacher version, in
eval mode (no dropout), and cached beside it
(``artifacts/<task>/finetune-teacher/.logits/<key>/``, key = the teacher
manifest's sha256 and the tokenised training set's fingerprint); every later
stage, epoch, seed or sweep trial reads them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from typing import Any

from theseus_cli.data import make_dataloader
from theseus_cli.model import loading as models
from theseus_cli.plugin.registry import kind_of
from theseus_cli.train.loop import predict

TEACHER_LOGITS = "teacher_logits"  # the dataset column / batch key
CACHE_DIR = ".logits"


def make_loss(alpha: float, temperature: float, kind: Any) -> Any:
    """A ``loss_fn(outputs, batch)`` for :func:`theseus_cli.train.loop.train`: the task
    kind's :meth:`~theseus_cli.plugin.TaskKind.distill_loss` of the student's logits against
    ``batch["teacher_logits"]`` ((B, C); token-level kinds (B, L, C))."""
    def loss_fn(outputs: Any, batch: dict[str, Any]) -> Any:
        return kind.distill_loss(outputs.logits, batch[TEACHER_LOGITS], batch, alpha,
                                 temperature)

    return loss_fn


def _key(teacher_art: Any, train_ds: Any) -> str:
    fingerprint = getattr(train_ds, "_fingerprint", None) or str(len(train_ds))
    doc = {"teacher": teacher_art.manifest_sha256, "data": fingerprint, "format": 1}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def teacher_logits(teacher_art: Any, train_ds: Any, tokenizer: Any, runtime: Any,
                   batch_size: int, log: Any) -> tuple[Any, bool]:
    """Logits of the teacher version on every row of ``train_ds``, cached beside it.

    Args:
        teacher_art: the ``finetune-teacher`` artifact (verified by the pipeline).
        train_ds: the tokenised training split, in its stored row order.

    Returns:
        ``(logits, computed)``: a float32 tensor of shape (len(train_ds), num_labels)
        ((N, L_max, num_labels) for a token-level kind, zeros past each row), and whether
        this call computed it (False: read from the cache).
    """
    import torch
    from safetensors.torch import load_file, save_file

    root = teacher_art.path.parent / CACHE_DIR
    target = root / f"{teacher_art.name}-{_key(teacher_art, train_ds)}"
    if (target / "logits.safetensors").is_file():
        logits = load_file(str(target / "logits.safetensors"))["logits"]
        if logits.shape[0] == len(train_ds) and torch.isfinite(logits).all():
            return logits, False
    model, _ = models.load_saved(teacher_art.file(models.MODEL_DIR))
    model = runtime.prepare(model)
    loader = runtime.prepare(make_dataloader(train_ds, tokenizer, batch_size, shuffle=False))
    log.info(f"computing the teacher's logits on {len(train_ds)} training examples once "
             f"({teacher_art.label}, eval mode)")
    values, _ = predict(model, loader, runtime)  # (N, num_labels), dropout off
    logits = torch.from_numpy(values).float().contiguous()
    if runtime.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            save_file({"logits": logits}, str(tmp / "logits.safetensors"))
            (tmp / "meta.json").write_text(json.dumps(
                {"teacher": teacher_art.label, "rows": len(train_ds)}) + "\n", encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    runtime.wait()
    return logits, True


def with_teacher_logits(train_ds: Any, logits: Any) -> Any:
    """``train_ds`` with a ``teacher_logits`` column: row i = the teacher's logits on row i,
    (C,), or (L_i, C) for a token-level kind (``logits`` (N, L_max, C) cut to each row's
    tokens)."""
    rows = logits.tolist()
    if logits.dim() == 3:
        lengths = [len(ids) for ids in train_ds["input_ids"]]
        rows = [row[:n] for row, n in zip(rows, lengths, strict=True)]
    return train_ds.add_column(TEACHER_LOGITS, rows)


def prepare(ctx: Any, teacher_art: Any, train_ds: Any, tokenizer: Any, task: Any,
            params: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Training data and loss of a stage with ``theseus_cli.plugin.DistillParams`` mixed in.

    Returns:
        ``(train_ds, loss_fn, info)``: with α = 0 the data unchanged and no
        ``loss_fn`` (the model's task loss); otherwise the data with a
        ``teacher_logits`` column, :func:`make_loss`, and what to record in the
        manifest (α, T, the teacher version, whether the logits were cached).
    """
    alpha = float(getattr(params, "distill_weight", 0.0))  # stages without DistillParams: 0
    if alpha == 0.0:
        return train_ds, None, {}
    logits, computed = teacher_logits(teacher_art, train_ds, tokenizer, ctx.runtime,
                                      params.eval_batch_size, ctx.log)
    info = {"distill_weight": alpha, "temperature": params.temperature,
            "teacher": teacher_art.name, "teacher_logits": "computed" if computed else "cached"}
    return (with_teacher_logits(train_ds, logits),
            make_loss(alpha, params.temperature, kind_of(task)), info)
