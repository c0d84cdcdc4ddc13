"""``replace``: progressive module replacing (paper section 3.1, eq. 1-3, and 3.3)."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli.contracts import (
    SCHEDULER_GROUP,
    SUCCESSOR_GROUP,
    CheckContext,
    Stage,
    StageContext,
    StageResult,
    param,
)
from theseus_cli.distillation import DistillParams
from theseus_cli.training import TrainingParams


class Replace(Stage):
    """Trains successor modules inside the frozen, fine-tuned predecessor.

    The predecessor's L layers are grouped into n modules of L/n layers. At every
    optimizer step each module independently draws r ~ Bernoulli(p) (eq. 2),
    with p from the scheduler, and runs its successor module if r = 1, else its
    frozen predecessor layers (eq. 3). The model family plugin says where the layers
    are; embeddings, predecessor layers, norms, pooler and head are frozen (requires_grad=False); gradients flow through
    frozen predecessor modules into the successor modules below them. Dev
    evaluation uses the successor-only path (eq. 5); the best is kept and
    written as a stock Hugging Face model with n layers.
    """

    name = "replace"
    help = "module replacing: train successor modules inside the frozen predecessor"
    inputs = ("finetune-teacher",)
    summary_metrics = ("score",)

    produces_successor = False  # its successor is fine-tuned by finetune-successor

    @dataclass
    class Params(TrainingParams, DistillParams):
        epochs: int = param(4, "passes over the training set (epochs)", min=1)
        successor_layers: int | None = param(
            None, "n, the number of modules (= successor layers); each module groups L/n "
                  "predecessor layers; null: L/2 (2 layers per module)", min=1)
        scheduler: str = param("linear", "replacing-rate scheduler (`theseus plugins` lists them)")
        schedulers: dict = param({}, "arguments of each scheduler", plugin_group=SCHEDULER_GROUP)
        successor: str = param("first-n", "successor builder (`theseus plugins` lists them)")
        successors: dict = param({}, "arguments of each successor builder",
                                 plugin_group=SUCCESSOR_GROUP)

    def check(self, ctx: CheckContext) -> None:
        """The model family is supported and n divides the predecessor's L layers."""
        from theseus_cli.errors import ConfigError
        from theseus_cli.families import family_for

        num_layers = ctx.model.num_layers
        n = ctx.params.successor_layers or max(1, num_layers // 2)
        family_for(ctx.model.model_type, ctx.model.source).check(ctx.model.config, n)
        if not (1 <= n <= num_layers) or num_layers % n:
            divisors = [d for d in range(1, num_layers + 1) if num_layers % d == 0]
            raise ConfigError(
                f"{ctx.setting('successor_layers')}: {n} successor layers cannot replace the "
                f"{num_layers} layers of the predecessor in modules of equal size; accepted: "
                f"{', '.join(map(str, divisors))}")

    def run(self, ctx: StageContext) -> StageResult:
        from theseus_cli import distillation, models
        from theseus_cli.data import load_tokenized
        from theseus_cli.families import family_of
        from theseus_cli.glue import get_task
        from theseus_cli.replacing import (
            ReplacingSchedule,
            assemble_successor,
            check_successor_forward,
            count_parameters,
            group_layers,
            make_hybrid,
        )
        from theseus_cli.training import train

        task, params = get_task(ctx.task), ctx.params
        teacher = ctx.inputs["finetune-teacher"]
        model, tokenizer = ctx.load_model(teacher)
        family = family_of(model)
        num_layers = models.num_layers(model)
        n = params.successor_layers or max(1, num_layers // 2)
        groups = group_layers(num_layers, n)
        scheduler, builder = ctx.plugins["scheduler"], ctx.plugins["successor"]
        sched_cls, sched_params = type(scheduler), scheduler.params
        builder_cls, builder_params = type(builder), builder.params
        builder.family = family
        train_ds = load_tokenized(ctx.config, task, tokenizer, "train")
        if builder.calibration_batches():  # data-driven importance (head-pruned)
            builder.calibration = calibration(model, tokenizer, train_ds, params.batch_size,
                                              builder.calibration_batches(), ctx.runtime.device)
        if builder.init_source == "pretrained":  # the predecessor before task fine-tuning
            pretrained, _ = ctx.load_predecessor()
            source_layers = family.layers(pretrained)
        else:
            source_layers = family.layers(model)
        successor_modules = builder.build(source_layers, n)
        hybrid = make_hybrid(model, successor_modules, n, family, builder)
        check_successor_forward(hybrid, builder_cls.name)  # shapes fit, before any training
        # masks drawn from (seed, step): the same on every process and after a resume
        schedule = ReplacingSchedule(scheduler, hybrid.theseus_router, ctx.runtime.seed,
                                     rank=ctx.runtime.process_index)
        dev_ds = load_tokenized(ctx.config, task, tokenizer, "selection")  # dev or holdout
        train_ds, loss_fn, distill = distillation.prepare(ctx, teacher, train_ds, tokenizer, task,
                                                          params)

        def before_training(total_steps: int) -> None:
            schedule.before_training(total_steps)
            ctx.log.info(f"{num_layers} predecessor layers → {n} modules of {num_layers // n}; "
                         f"scheduler {scheduler.describe()}; successor builder {builder_cls.name} "
                         f"(from the {builder.init_source} layers); {total_steps} optimizer steps")

        outcome = train(model=hybrid, tokenizer=tokenizer, task=task, train_ds=train_ds,
                        dev_ds=dev_ds, params=params, runtime=ctx.runtime, log=ctx.log,
                        phase="replace", before_step=schedule.before_step, extra_state=schedule,
                        checkpoints=ctx.checkpoints, find_unused_parameters=True,
                        before_training=before_training, loss_fn=loss_fn)
        hybrid = ctx.runtime.unwrap(hybrid)
        successor = assemble_successor(hybrid)  # eq. 5
        ctx.save_model(successor, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={"family": family.name, "predecessor_layers": num_layers, "modules": n,
                  "module_groups": [[g.start, g.stop] for g in groups],
                  "scheduler": {"name": sched_cls.name, "params": vars(sched_params),
                                "formula": scheduler.describe()},
                  "successor_builder": {"name": builder_cls.name, "params": vars(builder_params),
                                        "init_source": builder.init_source},
                  "layers": n, "parameters": count_parameters(successor),
                  "hybrid_parameters": count_parameters(hybrid),
                  "optimizer_steps": outcome.steps, "train_seconds": round(outcome.seconds, 2),
                  "distillation": distill, "evaluations": outcome.evaluations},
        )


def calibration(model, tokenizer, train_ds, batch_size: int, batches: int, device):
    """A :class:`~theseus_cli.contracts.Calibration`: the teacher (eval mode, on ``device``)
    and the first ``batches`` training batches in file order."""
    from theseus_cli.contracts import Calibration
    from theseus_cli.data import make_dataloader

    model.to(device).eval()
    loader = make_dataloader(train_ds, tokenizer, batch_size, shuffle=False)
    picked = []
    for batch in loader:
        picked.append({k: v.to(device) for k, v in batch.items()})
        if len(picked) >= batches:
            break
    return Calibration(model=model, batches=picked)
