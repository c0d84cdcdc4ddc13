"""``finetune-teacher``: fine-tune the predecessor on the task (paper section 4.3), or adopt
a model already fine-tuned on it (``theseus init --teacher``), as the official code starts
from a saved predecessor."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from theseus_cli.model.fine_tuned import check_head, label_alignment
from theseus_cli.model.loading import resolve_model_source
from theseus_cli.plugin import (
    CheckContext,
    Stage,
    StageContext,
    StageResult,
    TrainingParams,
    param,
)


class FinetuneTeacher(Stage):
    """Fine-tunes the predecessor (embedded model, hub id or local path) on the
    task's training set and keeps the checkpoint with the best dev score; with ``adopt``,
    publishes the predecessor as already fine-tuned, scored on dev, without training."""

    name = "finetune-teacher"
    help = "fine-tune the predecessor on the task (or adopt it as fine-tuned); best dev checkpoint"
    inputs = ()
    summary_metrics = ("score",)
    shared_across_seeds = True

    @dataclass
    class Params(TrainingParams):
        adopt: bool = param(False, "the model is already fine-tuned on this task: publish it "
                                   "as the teacher without training (theseus init --teacher)")

    def check(self, ctx: CheckContext) -> None:
        """With ``adopt``: the model's head is of the task's kind, and its classes are the
        task's (by name; order may differ)."""
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
        ctx.log.info(f"predecessor: {ctx.config.model} ({ctx.model_size(model)['layers']} "
                     f"layers); {len(train_ds)} train / {len(dev_ds)} dev examples")
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase="finetune-teacher")
        model = ctx.runtime.unwrap(model)
        ctx.save_model(model, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model), "train_examples": len(train_ds),
                  "dev_examples": len(dev_ds), "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2),
                  "evaluations": outcome.evaluations, **task_record(ctx)},
        )

    def adopt(self, ctx: StageContext) -> StageResult:
        """The predecessor as fine-tuned: scored on the selection split, saved, its source
        and the sha256 of its files recorded."""
        model, tokenizer = ctx.load_predecessor(fine_tuned=True)
        dev_ds = ctx.dataset("selection", tokenizer)
        metrics = ctx.evaluate(model, tokenizer, dev_ds)
        model = ctx.runtime.unwrap(model).cpu()
        ctx.log.info(f"adopted {ctx.config.model} as the teacher, fine-tuned elsewhere: dev "
                     f"score {100 * metrics['score']:.2f} ({len(dev_ds)} examples)")
        ctx.save_model(model, tokenizer)
        source = Path(resolve_model_source(ctx.config.model, ctx.config.root))
        hashes = ({f.relative_to(source).as_posix(): _sha256(f)
                   for f in sorted(source.rglob("*")) if f.is_file()} if source.is_dir() else {})
        return StageResult(metrics=metrics, info={
            **ctx.model_size(model), "adopted": {"source": ctx.config.model,
                                                 "sha256": hashes},
            "dev_examples": len(dev_ds), "optimizer_steps": 0, "train_seconds": 0.0,
            **task_record(ctx)})


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
