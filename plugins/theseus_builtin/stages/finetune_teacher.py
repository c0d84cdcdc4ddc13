"""``finetune-teacher``: fine-tune the predecessor on the task (paper section 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli.plugin import Stage, StageContext, StageResult, TrainingParams


class FinetuneTeacher(Stage):
    """Fine-tunes the predecessor (embedded model, hub id or local path) on the
    task's training set and keeps the checkpoint with the best dev score."""

    name = "finetune-teacher"
    help = "fine-tune the predecessor on the task; keeps the best dev checkpoint"
    inputs = ()
    summary_metrics = ("score",)
    shared_across_seeds = True

    @dataclass
    class Params(TrainingParams):
        pass

    def run(self, ctx: StageContext) -> StageResult:
        model, tokenizer = ctx.load_predecessor()
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        ctx.log.info(f"predecessor: {ctx.config.model} ({ctx.model_size(model)['layers']} layers); "
                     f"{len(train_ds)} train / {len(dev_ds)} dev examples")
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase="finetune-teacher")
        model = ctx.runtime.unwrap(model)
        ctx.save_model(model, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model), "train_examples": len(train_ds), "dev_examples": len(dev_ds),
                  "optimizer_steps": outcome.steps, "train_seconds": round(outcome.seconds, 2),
                  "evaluations": outcome.evaluations},
        )
