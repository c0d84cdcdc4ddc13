"""The training and evaluation loop shared by every training stage.

One loop serves fine-tuning the predecessor, module replacing and successor
fine-tuning: AdamW over the trainable parameters, linear warm-up/decay,
gradient clipping of trainable parameters only, dev evaluation every N
optimizer steps, and the best dev checkpoint kept (early-stopping selection,
paper section 4.3). A ``before_step`` hook lets module replacing draw its
Bernoulli mask once per optimizer step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from theseus_cli.contracts import param
from theseus_cli.glue import GlueTask
from theseus_cli.runlog import RunLog
from theseus_cli.runtime import Runtime


@dataclass
class TrainingParams:
    """Settings every training stage shares (units: epochs, optimizer steps)."""

    epochs: int = param(3, "passes over the training set (epochs)", min=1)
    max_steps: int | None = param(
        None, "stop after this many optimizer steps (overrides epochs); null: use epochs", min=1)
    batch_size: int = param(32, "training examples per micro-batch per process (paper: 32)", min=1)
    eval_batch_size: int = param(64, "examples per batch for dev evaluation", min=1)
    learning_rate: float = param(5e-5, "peak AdamW learning rate", min=0.0)
    weight_decay: float = param(0.0, "AdamW weight decay (not on biases and LayerNorm)", min=0.0)
    warmup_ratio: float = param(0.0, "fraction of optimizer steps of linear warm-up, then linear "
                                     "decay to 0", min=0.0, max=1.0)
    max_grad_norm: float | None = param(1.0, "clip the gradient norm of the trainable parameters; "
                                             "null: no clipping", min=0.0)
    eval_every: int | None = param(None, "evaluate on dev every N optimizer steps; null: once per "
                                         "epoch", min=1)


@dataclass
class TrainOutcome:
    """Result of :func:`train`; the model holds the best dev weights afterwards."""

    best_score: float
    best_metrics: dict[str, float]
    best_step: int
    steps: int
    seconds: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def predict(model: Any, loader: Any, runtime: Runtime) -> tuple[Any, Any]:
    """Logits and labels over a (prepared) dataloader, gathered across processes.

    Returns:
        ``(logits, labels)`` as NumPy arrays of shape (N, num_labels) and (N,),
        with the duplicated tail samples of distributed sharding dropped.
    """
    import numpy as np
    import torch

    was_training = model.training
    model.eval()
    all_logits, all_labels = [], []
    with torch.inference_mode():
        for batch in loader:
            out = model(**batch)
            logits, labels = runtime.gather_for_metrics((out.logits.float(), batch["labels"]))
            all_logits.append(logits.cpu().numpy())
            all_labels.append(labels.cpu().numpy())
    model.train(was_training)
    return np.concatenate(all_logits), np.concatenate(all_labels)


def evaluate(model: Any, loader: Any, runtime: Runtime, task: GlueTask) -> dict[str, float]:
    """GLUE dev metrics of ``model`` plus ``score`` (the paper's per-task number)."""
    from theseus_cli.metrics import compute_metrics, logits_to_predictions, task_score

    logits, labels = predict(model, loader, runtime)
    metrics = compute_metrics(task, logits_to_predictions(task, logits), labels)
    metrics["score"] = task_score(task, metrics)
    return metrics


def _optimizer(model: Any, trainable: list[Any], params: TrainingParams) -> Any:
    import torch

    ids = {id(p) for p in trainable}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if id(p) not in ids:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
         else decay).append(p)
    groups = [{"params": decay, "weight_decay": params.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=params.learning_rate)


def train(*, model: Any, tokenizer: Any, task: GlueTask, train_ds: Any, dev_ds: Any,
          params: TrainingParams, runtime: Runtime, log: RunLog, phase: str,
          before_step: Callable[[int], dict[str, Any]] | None = None) -> TrainOutcome:
    """Train the parameters of ``model`` that have ``requires_grad`` and keep the best.

    Args:
        model: a ``*ForSequenceClassification`` model (or a hybrid); trainable
            parameters are those with ``requires_grad=True``.
        train_ds, dev_ds: tokenised datasets (``theseus_cli.data.tokenize_split``).
        before_step: called with the 0-based optimizer step ``t`` before its
            first micro-batch; returns values to log (e.g. ``{"p": 0.4}``).
        phase: progress-bar label.

    A step whose loss has no gradient path to any trainable parameter (e.g.
    every module drew its frozen predecessor) does no backward pass; the
    step still counts, so schedules stay aligned with ``t``.

    Returns:
        :class:`TrainOutcome`; ``model`` is left holding the best dev weights.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    from theseus_cli.data import make_dataloader

    t0 = time.monotonic()
    runtime.seed_everything()
    trainable = [p for p in model.parameters() if p.requires_grad]
    train_loader = make_dataloader(train_ds, tokenizer, params.batch_size, shuffle=True,
                                   seed=runtime.seed)
    dev_loader = make_dataloader(dev_ds, tokenizer, params.eval_batch_size, shuffle=False)
    optimizer = _optimizer(model, trainable, params)
    model, optimizer, train_loader, dev_loader = runtime.prepare(
        model, optimizer, train_loader, dev_loader)
    accum = runtime.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(len(train_loader) / accum))
    total = params.max_steps or params.epochs * steps_per_epoch
    lr_schedule = get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total), max(total, 1))
    eval_every = params.eval_every or steps_per_epoch
    names = {id(p): n for n, p in runtime.unwrap(model).named_parameters()}

    best = TrainOutcome(-math.inf, {}, 0, 0, 0.0)
    best_state: dict[str, Any] | None = None
    step, micro, losses, extra = 0, 0, [], {}

    def run_eval() -> None:
        nonlocal best_state
        metrics = evaluate(model, dev_loader, runtime, task)
        record = {"step": step, **{f"dev_{k}": v for k, v in metrics.items()}}
        best.evaluations.append(record)
        log.record("eval", **record)
        improved = metrics["score"] > best.best_score
        if improved:
            best.best_score, best.best_metrics, best.best_step = metrics["score"], metrics, step
            best_state = {names[id(p)]: p.detach().to("cpu", copy=True) for p in trainable}
        bar.update(step, dev=metrics["score"])
        shown = ", ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items())
        log.info(f"{phase} step {step}/{total}: dev {shown}{' (best so far)' if improved else ''}")

    model.train()
    with log.phase(phase, total) as bar:
        epoch = 0
        while step < total:
            for batch in train_loader:
                if micro % accum == 0:
                    extra = before_step(step) if before_step else {}
                micro += 1
                with runtime.accumulate(model):
                    loss = model(**batch).loss
                    losses.append(loss.detach().float().item())
                    if loss.requires_grad:
                        runtime.backward(loss)
                    if runtime.sync_gradients:
                        if params.max_grad_norm and any(p.grad is not None for p in trainable):
                            runtime.clip_grad_norm_(trainable, params.max_grad_norm)
                        optimizer.step()
                        lr_schedule.step()
                        optimizer.zero_grad(set_to_none=True)
                if not runtime.sync_gradients:
                    continue
                step += 1
                mean_loss = sum(losses) / len(losses)
                losses = []
                log.record("train", step=step, epoch=epoch, loss=mean_loss,
                           lr=lr_schedule.get_last_lr()[0], **extra)
                bar.update(step, loss=mean_loss, **{k: v for k, v in extra.items() if k == "p"})
                if step % eval_every == 0 or step == total:
                    run_eval()
                if step >= total:
                    break
            epoch += 1
    if best_state is not None:
        with torch.no_grad():
            for p in trainable:
                p.copy_(best_state[names[id(p)]].to(p.device))
    best.steps, best.seconds = step, time.monotonic() - t0
    return best
