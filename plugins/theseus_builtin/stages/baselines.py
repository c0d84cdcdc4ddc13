"""The paper's baselines as successor-producing stages (Table 2 and Table 7).

- ``truncate``: "Fine-tuning": the bottom n layers of the pretrained predecessor,
  fine-tuned directly on the task with the task loss.
- ``distill``: "Vanilla KD" (Hinton et al. 2015, as in Sun et al. 2019): the same
  n-layer start trained on ``(1 − α)·CE + α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))``
  against the fine-tuned teacher (MSE on the logits for STS-B).

Both read the teacher (``finetune-teacher``: the distillation target, and the
reference for retention), start from the same pretrained layers as the paper's
successor (section 4.3), and publish a stock Hugging Face model, so ``evaluate``,
``export``, ``status`` and the GLUE table treat them like the Theseus successor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from theseus_builtin.stages.learning_rate import (
    learning_rate_param,
    lr_text,
    resolved_learning_rate,
)
from theseus_cli.errors import ConfigError
from theseus_cli.model import loading as models
from theseus_cli.plugin import (
    CheckContext,
    DistillParams,
    Stage,
    StageContext,
    StageResult,
    TrainingParams,
    param,
)
from theseus_cli.plugin.registry import family_for


class TruncatedBaseline(Stage):
    """Shared run: build the n-layer start, train it, save it."""

    inputs = ("finetune-teacher",)
    summary_metrics = ("score",)
    produces_successor = True
    method = ""

    def check(self, ctx: CheckContext) -> None:
        """n must be between 1 and the predecessor's L layers; the family must be
        one whose layers can be cut (the same as module replacing's)."""
        family_for(ctx.model.model_type, ctx.model.source).check(ctx.model.config)
        n, num_layers = ctx.params.successor_layers, ctx.model.num_layers
        if n is not None and not 1 <= n <= num_layers:
            raise ConfigError(f"{ctx.setting('successor_layers')}: keep between 1 and the "
                              f"{num_layers} layers of the predecessor")

    def run(self, ctx: StageContext) -> StageResult:
        params = ctx.params
        teacher = ctx.inputs["finetune-teacher"]
        model, tokenizer = ctx.load_predecessor()
        num_layers = models.num_layers(model)
        n = params.successor_layers or max(1, num_layers // 2)
        params = resolved_learning_rate(ctx, model)
        model = models.keep_bottom_layers(model, n)
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        train_ds, loss_fn, distill = self.objective(ctx, teacher, train_ds, tokenizer, n,
                                                    num_layers)
        ctx.log.info(f"{self.name}: the bottom {n} of the predecessor's {num_layers} pretrained "
                     f"layers{', distilled from ' + teacher.label if distill else ''}; "
                     f"{lr_text(ctx, params)}")
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase=self.name, loss_fn=loss_fn,
                            params=params)
        ctx.log.info(outcome.stop_line())
        model = ctx.runtime.unwrap(model)
        ctx.save_model(model, tokenizer)
        short, full = self.loss_text(distill)
        epochs = f"{params.epochs} epoch{'s' if params.epochs != 1 else ''}"
        label = self.title(n, params) + short
        recipe = f"{self.title(n, params)}, at most {epochs} at lr {params.learning_rate:g}{full}"
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={"method": label, "recipe": recipe, "layers": n, "predecessor_layers": num_layers,
                  "parameters": ctx.model_size(model)["parameters"], "distillation": distill,
                  "learning_rate": params.learning_rate, "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2), **outcome.stop_record(),
                  "evaluations": outcome.evaluations},
        )

    def objective(self, ctx: StageContext, teacher: Any, train_ds: Any, tokenizer: Any,
                  n: int, num_layers: int) -> tuple[Any, Any, dict[str, Any]]:
        """``(train_ds, loss_fn, info)``: the task loss, or vanilla KD when the params have a
        distillation weight (:meth:`StageContext.distillation`)."""
        return ctx.distillation(teacher, train_ds, tokenizer)

    def title(self, n: int, params: Any) -> str:
        """The method's name and depth in tables: ``truncate 3L``."""
        return f"{self.name} {n}L"

    def loss_text(self, distill: dict[str, Any]) -> tuple[str, str]:
        """``(short, full)``: the loss as the table label names it (``" + KD α=0.5"``,
        ``", task loss"``) and as the recipe legend spells it (``" + KD α=0.5 T=2"``)."""
        if not distill:
            return ", task loss", ", task loss"
        return (f" + KD α={distill['distill_weight']:g}",
                f" + KD α={distill['distill_weight']:g} T={distill['temperature']:g}")


def epochs_param() -> Any:
    return param(7, "the most passes over the training set (epochs): 7, the passes of the "
                    "default Theseus successor (replace 4 + finetune-successor 3), so that no "
                    "method wins by training longer", min=1)


def patience_param() -> Any:
    return param(2, "early stopping: stop after this many dev evaluations in a row without a "
                    "new best score; null: train every epoch", min=1)


def layers_param() -> Any:
    return param(None, "n: keep the bottom n layers of the pretrained predecessor; null: L/2 "
                       "(the size of the default Theseus successor)", min=1)


class Truncate(TruncatedBaseline):
    """Fine-tuning baseline (paper Table 2 "Fine-tuning", Table 7): the bottom n
    pretrained layers, fine-tuned on the task with the task loss only."""

    name = "truncate"
    help = ("baseline: the bottom n layers of the pretrained predecessor, fine-tuned on the task "
            "(the paper's fine-tuning baseline)")

    @dataclass
    class Params(TrainingParams):
        epochs: int = epochs_param()
        learning_rate: float | None = learning_rate_param()
        patience: int | None = patience_param()
        successor_layers: int | None = layers_param()


class Distill(TruncatedBaseline):
    """Vanilla KD baseline (Hinton et al. 2015; paper Table 2, after Sun et al. 2019)."""

    name = "distill"
    help = ("baseline: vanilla knowledge distillation of the fine-tuned teacher into the bottom "
            "n pretrained layers")

    @dataclass
    class Params(TrainingParams, DistillParams):
        epochs: int = epochs_param()
        learning_rate: float | None = learning_rate_param()
        patience: int | None = patience_param()
        successor_layers: int | None = layers_param()
        distill_weight: float = param(
            0.5, "α: weight of the distillation term, (1 − α)·CE + α·T²·KL (MSE for STS-B)",
            min=0.0, max=1.0)
