"""``finetune-teacher``: fine-tune the predecessor on the task (paper section 4.3), or adopt
a model already fine-tuned on it (``theseus init --teacher``), as the official code starts
from a saved predecessor."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_builtin.stages.evaluate import DEGENERATE_MARGIN, training_labels
from theseus_builtin.stages.learning_rate import (
    learning_rate_param,
    lr_text,
    resolved_learning_rate,
)
from theseus_cli.data.batching import concat_padded
from theseus_cli.model.fine_tuned import check_head, label_alignment
from theseus_cli.model.loading import check_tokenizer_files, resolve_model_source
from theseus_cli.plugin import (
    CheckContext,
    Stage,
    StageContext,
    StageResult,
    TrainingParams,
    param,
)
from theseus_cli.plugin.registry import kind_of


class FinetuneTeacher(Stage):
    """Fine-tunes the predecessor (embedded model, hub id or local path) on the
    task's training set and keeps the checkpoint with the best dev score; with ``adopt``,
    publishes the predecessor as already fine-tuned, scored on dev, without training."""

    name = "finetune-teacher"
    help = ("fine-tune the predecessor on the task until its dev score stops improving (or "
            "adopt it as fine-tuned); keeps the best dev checkpoint")
    inputs = ()
    summary_metrics = ("score",)
    shared_across_seeds = True

    @dataclass
    class Params(TrainingParams):
        epochs: int = param(10, "the most passes over the training set (epochs); training "
                                "stops earlier when the dev score stops improving (patience)",
                            min=1)
        learning_rate: float | None = learning_rate_param()
        # 3: WNUT-17's dev entity F1 fell for two epochs (3 and 4) before its best at epoch 7
        # (runs/results/wnut17-main.log), so 2 would have stopped it 5 points short
        patience: int | None = param(
            3, "early stopping: stop after this many dev evaluations in a row without a new "
               "best score; null: train every epoch", min=1)
        adopt: bool = param(False, "the model is already fine-tuned on this task: publish it "
                                   "as the teacher without training (theseus init --teacher)")

    def check(self, ctx: CheckContext) -> None:
        """A local model directory has tokenizer files; with ``adopt``: the model's head is
        of the task's kind, and its classes are the task's (by name; order may differ)."""
        check_tokenizer_files(ctx.model.source)  # before any work: a vocabulary to read with
        if ctx.params.adopt:
            config, task = ctx.model.config, ctx.config.task_definition(ctx.task)
            check_head(config, task, ctx.model.source)
            names = [config.id2label[i] for i in range(config.num_labels)]
            label_alignment(names, task)

    def run(self, ctx: StageContext) -> StageResult:
        if ctx.params.adopt:
            return self.adopt(ctx)
        model, tokenizer = ctx.load_predecessor()
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        hidden = getattr(model.config, "hidden_size", None)
        params = resolved_learning_rate(ctx, model)
        lr = params.learning_rate
        ctx.log.info(f"predecessor: {ctx.config.model} ({ctx.model_size(model)['layers']} "
                     f"layers, hidden {hidden}); {len(train_ds)} train / {len(dev_ds)} "
                     f"{ctx.config.data.selection_split} examples; {lr_text(ctx, params)}, "
                     f"at most {params.epochs} epochs, "
                     f"patience {params.patience}")
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase="finetune-teacher",
                            params=params)
        ctx.log.info(outcome.stop_line())
        model = ctx.runtime.unwrap(model)
        trivial = trivial_score(ctx, dev_ds)
        warnings = weak_teacher_warnings(outcome.best_score, trivial, ctx, outcome=outcome,
                                         learning_rate=lr)
        for w in warnings:
            ctx.log.info(f"[yellow]warning: {w}[/]")
        ctx.save_model(model, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model), "train_examples": len(train_ds),
                  "dev_examples": len(dev_ds), "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2), "learning_rate": lr,
                  **outcome.stop_record(), "trivial_score": trivial, "warnings": warnings,
                  "evaluations": outcome.evaluations, **task_record(ctx)},
        )

    def adopt(self, ctx: StageContext) -> StageResult:
        """The predecessor as fine-tuned: scored on the selection split, saved, its source
        and the sha256 of its files recorded."""
        model, tokenizer = ctx.load_predecessor(fine_tuned=True)
        dev_ds = ctx.dataset("selection", tokenizer)
        metrics = ctx.evaluate(model, tokenizer, dev_ds)
        model = ctx.runtime.unwrap(model).cpu()
        ctx.log.info(f"adopted {ctx.config.model} as the teacher, fine-tuned elsewhere: "
                     f"{ctx.config.data.selection_split} score {100 * metrics['score']:.2f} "
                     f"({len(dev_ds)} examples)")
        trivial = trivial_score(ctx, dev_ds)
        warnings = weak_teacher_warnings(metrics["score"], trivial, ctx)
        for w in warnings:
            ctx.log.info(f"[yellow]warning: {w}[/]")
        ctx.save_model(model, tokenizer)
        source = Path(resolve_model_source(ctx.config.model, ctx.config.root))
        hashes = ({f.relative_to(source).as_posix(): _sha256(f)
                   for f in sorted(source.rglob("*")) if f.is_file()} if source.is_dir() else {})
        return StageResult(metrics=metrics, info={
            **ctx.model_size(model), "adopted": {"source": ctx.config.model,
                                                 "sha256": hashes},
            "dev_examples": len(dev_ds), "optimizer_steps": 0, "train_seconds": 0.0,
            "trivial_score": trivial, "warnings": warnings, **task_record(ctx)})


def trivial_score(ctx: StageContext, dev_ds: Any) -> float | None:
    """The task score (a fraction, as ``score``) of the task kind's trivial row on the
    selection split ``dev_ds``: the training set's majority class, most frequent tag or
    mean; None where the score is undefined (the correlation of a constant)."""
    import numpy as np

    from theseus_cli.data.metrics import compute_metrics, task_score

    task = ctx.task_definition
    kind = kind_of(task)
    rows = dev_ds["labels"]
    refs = (concat_padded([np.asarray(r)[None, :] for r in rows], -100) if kind.token_level
            else np.asarray(rows))
    preds = kind.trivial_predictions(training_labels(task, ctx), refs)
    with np.errstate(all="ignore"):
        score = task_score(task, compute_metrics(task, preds, refs))
    return float(score) if score is not None and math.isfinite(score) else None


def weak_teacher_warnings(score: float, trivial: float | None, ctx: StageContext,
                          outcome: Any = None, learning_rate: float | None = None) -> list[str]:
    """Why this teacher may be too weak to compress, each naming the settings to try:
    its dev ``score`` within a point (``DEGENERATE_MARGIN``, evaluate's) of the ``trivial``
    row's, or (``outcome`` of a
    training run) its best score at the last evaluation of a run that hit its maximum
    while still rising. Recorded in the manifest; ``replace`` repeats them and
    ``evaluate``'s table shows them."""
    warnings = []
    name = kind_of(ctx.task_definition).trivial_name
    if trivial is not None and math.isfinite(score) and score - trivial < DEGENERATE_MARGIN:
        todo = (f"try a higher finetune-teacher --learning-rate (now {learning_rate:g}) or "
                "more --epochs, or check the data's labels" if learning_rate is not None else
                "check that the adopted model was fine-tuned on this task, with these labels")
        warnings.append(f"weak teacher: dev score {100 * score:.2f} is within a point of the "
                        f"{name} ({100 * trivial:.2f}); {todo}")
    if outcome is not None and outcome.still_rising:
        epochs = ctx.params.epochs
        warnings.append(
            f"undertrained teacher: its best dev score came at its last evaluation (epoch "
            f"{outcome.best_epoch:g}, the maximum) and was still rising; try finetune-teacher "
            f"--epochs {2 * epochs} (or --max-steps), then rerun replace")
    return warnings


def task_record(ctx: StageContext) -> dict:
    """What the teacher's manifest records about the task: ``task_kind``, ``labels`` (the
    class or tag names in id order, as the exported ``id2label``), and for a task without a
    validation file ``validation_rows``, the rows of the training file (0-based) held out
    as its validation split (every stage and seed of the workspace uses these rows)."""
    task = ctx.task_definition
    record = {"task_kind": task.kind, "labels": list(task.label_names)}
    holdout = getattr(task, "holdout", None)
    if holdout is None or getattr(task.settings, "validation", None):
        return record
    return {**record, "validation_rows": holdout()[1]}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
