"""``replace``: progressive module replacing (paper section 3.1, eq. 1-3, and 3.3)."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli.data import make_dataloader
from theseus_cli.errors import ConfigError
from theseus_cli.method.grouping import group_layers, module_count_error
from theseus_cli.model import loading as models
from theseus_cli.plugin import (
    SCHEDULER_GROUP,
    SUCCESSOR_GROUP,
    Calibration,
    CheckContext,
    DistillParams,
    Stage,
    StageContext,
    StageResult,
    TrainingParams,
    param,
)
from theseus_cli.plugin.registry import family_for, family_of


class Replace(Stage):
    """Trains successor modules inside the frozen, fine-tuned predecessor.

    The predecessor's L layers are grouped into n modules of L/n layers. At every
    optimizer step each module independently draws r ~ Bernoulli(p) (eq. 2),
    with p from the scheduler, and runs its successor module if r = 1, else its
    frozen predecessor layers (eq. 3). The model family plugin says where the layers
    are; embeddings, predecessor layers, norms, pooler and head are frozen
    (requires_grad=False); gradients flow through frozen predecessor modules into
    the successor modules below them. Dev
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
        epochs: int = param(4, "the most passes over the training set (epochs)", min=1)
        patience: int | None = param(
            2, "early stopping: stop after this many dev evaluations in a row without a new "
               "best successor score, counted once the scheduler reached its final rate "
               "(p = 1); null: train every epoch", min=1)
        successor_layers: int | None = param(
            None, "n, the number of modules (= successor layers); each module groups L/n "
                  "predecessor layers; null: L/2 (2 layers per module)", min=1)
        scheduler: str = param("linear", "replacing-rate scheduler (`theseus plugins` lists them)")
        schedulers: dict = param({}, "arguments of each scheduler", plugin_group=SCHEDULER_GROUP)
        embedding_rank: int | None = param(
            None, "r: replace the word embedding too, by a factorised one (V×r then r×H, from "
                  "the truncated SVD of the teacher's) trained as one more module; null: the "
                  "embedding is copied whole (the paper)", min=1)
        embedding_energy: float | None = param(
            None, "instead of embedding_rank: the smallest rank whose singular values hold "
                  "this fraction of the spectrum's energy (ROSITA's rule), in (0, 1)",
            min=0.0, max=1.0)
        successor: str = param("first-n", "successor builder (`theseus plugins` lists them)")
        successors: dict = param({}, "arguments of each successor builder",
                                 plugin_group=SUCCESSOR_GROUP)

    def check(self, ctx: CheckContext) -> None:
        """The model family is supported and n divides the predecessor's L layers."""
        num_layers = ctx.model.num_layers
        n = ctx.params.successor_layers or max(1, num_layers // 2)
        family_for(ctx.model.model_type, ctx.model.source).check(ctx.model.config, n)
        error = module_count_error(num_layers, n, ctx.setting("successor_layers"))
        if error is not None:
            raise error
        rank, energy = ctx.params.embedding_rank, ctx.params.embedding_energy
        if rank is not None and energy is not None:
            raise ConfigError(f"{ctx.setting('embedding_rank')} and "
                              f"{ctx.setting('embedding_energy')}: give one of them, not both")
        width = embedding_width(ctx.model.config)
        if rank is not None and width is not None and not rank < width:
            raise ConfigError(f"{ctx.setting('embedding_rank')}: the rank must lie between 1 and "
                              f"{width - 1} (the word embedding is {width} wide: a rank of "
                              f"{width} or more saves nothing)")
        if energy is not None and not 0.0 < energy < 1.0:
            raise ConfigError(f"{ctx.setting('embedding_energy')}: accepted: a fraction in (0, 1)")

    def run(self, ctx: StageContext) -> StageResult:
        from theseus_cli.method.masks import ReplacingSchedule  # torch: when a stage runs
        from theseus_cli.method.parameters import count_parameters
        from theseus_cli.method.replacing import (
            assemble_successor,
            check_successor_forward,
            make_hybrid,
        )

        params = ctx.params
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
        train_ds = ctx.dataset("train", tokenizer)
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
        embedding = compressed_embedding(hybrid, params) if (
            params.embedding_rank is not None or params.embedding_energy is not None) else None
        if embedding:
            ctx.log.info(f"word embedding → rank {embedding['rank']} factors: "
                         f"{embedding['parameters_before']:,} → {embedding['parameters']:,} "
                         f"parameters (relative error {embedding['relative_error']:.3f}), "
                         "replaced as one more module")
        check_successor_forward(hybrid, builder_cls.name)  # shapes fit, before any training
        # masks drawn from (seed, step): the same on every process and after a resume
        schedule = ReplacingSchedule(scheduler, hybrid.theseus_router, ctx.runtime.seed,
                                     rank=ctx.runtime.process_index)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        train_ds, loss_fn, distill = ctx.distillation(teacher, train_ds, tokenizer)

        warnings = list(builder.warnings)
        for w in teacher.manifest.get("info", {}).get("warnings") or []:
            ctx.log.info(f"[yellow]warning: the teacher {teacher.label}: {w}[/]")
        ramp_end = [0]  # patience counts from the step the scheduler reaches its final rate

        def before_training(total_steps: int) -> None:
            schedule.before_training(total_steps)
            ramp_end[0] = final_rate_step(scheduler, total_steps)
            warnings.extend(scheduler.warnings(total_steps))
            for w in warnings:
                ctx.log.info(f"[yellow]warning: {w}[/]")
            ctx.log.info(f"{num_layers} predecessor layers → {n} modules of {num_layers // n}; "
                         f"scheduler {scheduler.describe()}; successor builder {builder_cls.name} "
                         f"(from the {builder.init_source} layers); {total_steps} optimizer steps")

        outcome = ctx.train(hybrid, tokenizer, train_ds, dev_ds, phase="replace",
                            before_step=schedule.before_step, extra_state=schedule,
                            find_unused_parameters=True, before_training=before_training,
                            loss_fn=loss_fn, patience_from=lambda: ramp_end[0])
        ctx.log.info(outcome.stop_line())
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
                  **({"embedding": embedding} if embedding else {}),
                  "hybrid_parameters": count_parameters(hybrid),
                  "optimizer_steps": outcome.steps, "train_seconds": round(outcome.seconds, 2),
                  **outcome.stop_record(), "patience_from_step": ramp_end[0],
                  "distillation": distill, "evaluations": outcome.evaluations,
                  "warnings": warnings},
        )


def embedding_width(config) -> int | None:
    """E, the width of a config's word embedding (``embedding_size`` where it differs from
    the hidden size: ALBERT, ELECTRA), or None when the config does not say."""
    for key in ("embedding_size", "hidden_size", "n_embd", "dim"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def compressed_embedding(hybrid, params) -> dict:
    """Route the hybrid's word embedding as module n, its successor the rank-r factors of
    the teacher's (``embedding_rank``, or the rank holding ``embedding_energy``); return
    what the manifest records.

    Raises:
        ConfigError: a rank outside 1 .. E − 1 or an energy outside (0, 1).
    """
    from theseus_cli.method.replacing import route_embedding
    from theseus_cli.model.embedding import embedding_rank, factorize, relative_error

    teacher = hybrid.get_input_embeddings()
    rank = embedding_rank(teacher.weight, params.embedding_rank, params.embedding_energy)
    factors = factorize(teacher, rank)
    out = {"rank": rank, "energy": params.embedding_energy,
           "relative_error": relative_error(teacher, factors),
           "parameters_before": teacher.weight.numel(),
           "parameters": sum(p.numel() for p in factors.parameters())}
    route_embedding(hybrid, factors)
    return out


def final_rate_step(scheduler, total_steps: int) -> int:
    """The first optimizer step from which ``scheduler`` stays at its final rate: its
    ``step_at_one`` where it has one (eq. 6's p = 1), else found from its rates over the
    stage's steps (each checked as the training loop checks it), or ``total_steps`` if
    none before the end. Early stopping's patience counts from there.

    Raises:
        PluginError: the scheduler raised or returned a rate outside [0, 1] (names it and
            the step).
    """
    from theseus_cli.method.masks import scheduler_rate

    at = getattr(scheduler, "step_at_one", None)
    if isinstance(at, int) and not isinstance(at, bool):
        return min(at, total_steps)
    rates = [scheduler_rate(scheduler, t) for t in range(total_steps)]
    t = len(rates)
    while t > 0 and rates[t - 1] == rates[-1]:
        t -= 1
    return t


def calibration(model, tokenizer, train_ds, batch_size: int, batches: int, device):
    """A :class:`~theseus_cli.plugin.Calibration`: the teacher (eval mode, on ``device``)
    and the first ``batches`` training batches in file order."""
    model.to(device).eval()
    loader = make_dataloader(train_ds, tokenizer, batch_size, shuffle=False)
    picked = []
    for batch in loader:
        picked.append({k: v.to(device) for k, v in batch.items()})
        if len(picked) >= batches:
            break
    return Calibration(model=model, batches=picked)
