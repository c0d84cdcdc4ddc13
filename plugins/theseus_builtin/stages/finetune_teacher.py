"""``finetune-teacher``: fine-tune the predecessor on the task (paper section 4.3)."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli.contracts import Stage, StageContext, StageResult
from theseus_cli.training import TrainingParams


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
        from theseus_cli import models
        from theseus_cli.data import load_tokenized
        from theseus_cli.glue import get_task
        from theseus_cli.replacing import count_parameters
        from theseus_cli.training import train

        task = get_task(ctx.task)
        model, tokenizer = ctx.load_predecessor()
        train_ds = load_tokenized(ctx.config, task, tokenizer, "train")
        dev_ds = load_tokenized(ctx.config, task, tokenizer, "selection")  # dev or holdout
        ctx.log.info(f"predecessor: {ctx.config.model} ({models.num_layers(model)} layers); "
                     f"{len(train_ds)} train / {len(dev_ds)} dev examples")
        outcome = train(model=model, tokenizer=tokenizer, task=task, train_ds=train_ds,
                        dev_ds=dev_ds, params=ctx.params, runtime=ctx.runtime, log=ctx.log,
                        phase="finetune-teacher", checkpoints=ctx.checkpoints)
        model = ctx.runtime.unwrap(model)
        ctx.save_model(model, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={"layers": models.num_layers(model), "parameters": count_parameters(model),
                  "train_examples": len(train_ds), "dev_examples": len(dev_ds),
                  "optimizer_steps": outcome.steps, "train_seconds": round(outcome.seconds, 2),
                  "evaluations": outcome.evaluations},
        )
