"""The peak learning rate a training stage takes when none is set: by the predecessor's
hidden size, one rule for the teacher (``finetune-teacher``) and the baselines
(``truncate``, ``distill``, ``pkd``, ``layerdrop``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from theseus_cli.plugin import StageContext, param


def default_learning_rate(hidden_size: int | None) -> float:
    """The peak learning rate when none is set, by the predecessor's hidden size:
    1e-4 below 768 (MiniLM-L6, hidden 384: 3 epochs at 5e-5 left Banking77's teacher at
    67.6% dev accuracy and WNUT-17's near 0.2 dev entity F1; 10 epochs at 1e-4 reached 93.02
    and 56.26, runs/results/banking77-main.log and wnut17-main.log; PKD and LayerDrop at
    5e-5 were still rising at their 7th epoch on Banking77, 56.36 and 41.04 test accuracy
    against 85.03 and 67.44 at 1e-4, docs/results/smaller-banking77.md), 5e-5 below 1024
    (BERT-base, MPNet-base: 90.43 MRPC dev at 6 epochs, runs/results/mpnet-mrpc-cpu.log;
    the official BERT and PKD rate), else 2e-5 (large models, the BERT paper's grid).
    Unknown size: 5e-5."""
    if hidden_size is None:
        return 5e-5
    return 1e-4 if hidden_size < 768 else 5e-5 if hidden_size < 1024 else 2e-5


def learning_rate_param() -> Any:
    """The ``learning_rate`` field of a stage that follows the rule when it is null."""
    return param(None, "peak AdamW learning rate; null: by the predecessor's hidden size "
                       "(1e-4 below 768, 5e-5 below 1024, else 2e-5)", min=0.0)


def resolved_learning_rate(ctx: StageContext, model: Any) -> Any:
    """The stage's params with ``learning_rate`` set: the given one, else
    :func:`default_learning_rate` of ``model``'s hidden size."""
    if ctx.params.learning_rate is not None:
        return ctx.params
    hidden = getattr(model.config, "hidden_size", None)
    return dataclasses.replace(ctx.params, learning_rate=default_learning_rate(hidden))


def lr_text(ctx: StageContext, params: Any) -> str:
    """``learning rate 0.0001 (by hidden size)`` for the stage's log."""
    by_size = " (by hidden size)" if ctx.params.learning_rate is None else ""
    return f"learning rate {params.learning_rate:g}{by_size}"
