"""``layerdrop``: the LayerDrop baseline as the Theseus paper ran it (Table 2, "LayerDrop").

The pretrained predecessor is fine-tuned on the task with structured layer dropout (Fan et
al. 2019: each layer skipped with probability ``rate`` per optimizer step), then pruned to
every other layer with no further training. Fan et al. apply LayerDrop in pre-training as
well and found fine-tuning-only LayerDrop weaker; the paper's row (and this stage) is the
fine-tuning-only variant. The mechanism: :mod:`theseus_cli.train.layerdrop`.
"""

from __future__ import annotations

from dataclasses import dataclass

from theseus_builtin.stages.baselines import epochs_param, patience_param
from theseus_builtin.stages.learning_rate import (
    learning_rate_param,
    lr_text,
    resolved_learning_rate,
)
from theseus_cli.errors import ConfigError
from theseus_cli.model import loading as models
from theseus_cli.plugin import CheckContext, Stage, StageContext, StageResult, TrainingParams, param
from theseus_cli.plugin.registry import family_for

KEPT = ("even", "odd")


def kept_layers(num_layers: int, kept: str) -> list[int]:
    """0-based indices of the layers every-other pruning keeps: ``even`` keeps the 1-based
    layers 2, 4, … (the top of each pair, the last layer of an even L included), ``odd``
    keeps 1, 3, ….

    Raises:
        ConfigError: an unknown ``kept`` or a model of one layer.
    """
    if kept not in KEPT:
        raise ConfigError(f"LayerDrop kept layers {kept!r}; accepted: {', '.join(KEPT)}")
    if num_layers < 2:
        raise ConfigError(f"LayerDrop needs at least 2 layers to prune every other one; the "
                          f"model has {num_layers}")
    return list(range(1 if kept == "even" else 0, num_layers, 2))


class LayerDrop(Stage):
    """Fine-tune the pretrained predecessor with LayerDrop, keep every other layer."""

    name = "layerdrop"
    help = ("baseline: fine-tune the pretrained predecessor with LayerDrop, then keep every other "
            "layer without further training (the paper's LayerDrop row)")
    inputs = ("finetune-teacher",)
    summary_metrics = ("score",)
    produces_successor = True

    @dataclass
    class Params(TrainingParams):
        epochs: int = epochs_param()
        learning_rate: float | None = learning_rate_param()
        patience: int | None = patience_param()
        rate: float = param(0.5, "p: probability that a layer is skipped, per layer and optimizer "
                                 "step, in [0, 1); 0.5 matches pruning half the layers", min=0.0)
        kept_layers: str = param("even", "which layers the pruned model keeps, every other one: "
                                          "even (of 6: 2, 4 and 6, the top of each pair) or odd "
                                          "(of 6: 1, 3 and 5)", choices=KEPT)

    def check(self, ctx: CheckContext) -> None:
        """The rate must lie in [0, 1) and the family's layers must be cuttable, before any
        work."""
        family_for(ctx.model.model_type, ctx.model.source).check(ctx.model.config)
        if not 0.0 <= ctx.params.rate < 1.0:
            raise ConfigError(f"{ctx.setting('rate')}: a LayerDrop rate must lie in [0, 1) "
                              "(1 would skip every layer)")
        kept_layers(ctx.model.num_layers, ctx.params.kept_layers)

    def run(self, ctx: StageContext) -> StageResult:
        from theseus_cli.train import layerdrop  # torch at its top

        model, tokenizer = ctx.load_predecessor()
        params = resolved_learning_rate(ctx, model)
        num_layers = models.num_layers(model)
        kept = kept_layers(num_layers, params.kept_layers)
        state = layerdrop.install(model, params.rate, kept, ctx.runtime.seed)
        ctx.log.info(f"layerdrop: the pretrained predecessor's {num_layers} layers fine-tuned with "
                     f"LayerDrop p={params.rate:g}; {ctx.config.data.selection_split} scores "
                     f"the pruned model (layers "
                     f"{', '.join(str(i + 1) for i in kept)}); {lr_text(ctx, params)}")
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, before_step=state.before_step,
                            extra_state=state, find_unused_parameters=True,
                            params=params)
        ctx.log.info(outcome.stop_line())
        model = ctx.runtime.unwrap(model)
        layerdrop.remove(model)
        pruned = models.keep_layers(model, kept)
        # what is published is scored itself (a family may conform its new first layer)
        metrics = ctx.evaluate(pruned, tokenizer, dev_ds)
        if abs(metrics["score"] - outcome.best_score) > 1e-6:
            ctx.log.info(f"layerdrop: the pruned model scores {100 * metrics['score']:.2f} on "
                         f"{ctx.config.data.selection_split} "
                         f"(the slotted model {100 * outcome.best_score:.2f})")
        ctx.save_model(pruned, tokenizer)
        n = len(kept)
        epochs = f"{params.epochs} epoch{'s' if params.epochs != 1 else ''}"
        return StageResult(
            metrics={**metrics, "best_step": outcome.best_step},
            info={"method": f"layerdrop {n}L, task loss",
                  "recipe": f"layerdrop {n}L: {num_layers} layers fine-tuned with p={params.rate:g}"
                            f" for at most {epochs} at lr {params.learning_rate:g}, task loss, then "
                            f"pruned to layers {','.join(str(i + 1) for i in kept)}",
                  "layers": n, "predecessor_layers": num_layers, "kept_layers": [i + 1 for i in kept],
                  "parameters": ctx.model_size(pruned)["parameters"],
                  "learning_rate": params.learning_rate, "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2), **outcome.stop_record(),
                  "evaluations": outcome.evaluations},
        )
