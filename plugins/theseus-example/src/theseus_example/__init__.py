"""An example third-party theseus plugin package: one plugin of each kind (a scheduler, a
successor builder, a model family, a stage and a task kind), written against
``theseus_cli.plugin`` alone. No torch at module level: plugin modules must be cheap to import."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from theseus_cli.plugin import (
    ConfigError,
    LayerListFamily,
    Scheduler,
    Stage,
    StageContext,
    StageResult,
    SuccessorBuilder,
    TaskKind,
    TrainingParams,
    param,
)

if TYPE_CHECKING:
    from torch import nn


class CosineScheduler(Scheduler):
    """``p(t) = b + (1 − b)·(1 − cos(π·min(1, t/T)))/2``: slow at the start and at the end.

    T (optimizer steps) is ``steps_to_one``, or ``fraction_to_one`` of the stage's
    planned optimizer steps (learnt in :meth:`bind`).
    """

    name = "cosine"
    help = "cosine ramp of the replacing rate from b to 1 (example plugin)"

    @dataclass
    class Params:
        b: float = param(0.3, "replacing rate at step 0", min=0.0, max=1.0)
        steps_to_one: int | None = param(None, "optimizer step at which p reaches 1", min=1)
        fraction_to_one: float | None = param(
            0.5, "fraction of the stage's optimizer steps at which p reaches 1 (used when "
                 "steps_to_one is null)", min=0.0, max=1.0)

        def __post_init__(self) -> None:
            if self.steps_to_one is None and not self.fraction_to_one:
                raise ConfigError("cosine scheduler: set steps_to_one or fraction_to_one")

    def __init__(self, params):
        super().__init__(params)
        self.steps_to_one = params.steps_to_one

    def bind(self, total_steps: int) -> None:
        if self.params.steps_to_one is None:
            self.steps_to_one = max(1, round(self.params.fraction_to_one * total_steps))

    def rate(self, step: int) -> float:
        if self.steps_to_one is None:
            raise ConfigError("cosine scheduler: rate() before bind() with fraction_to_one")
        x = min(1.0, step / self.steps_to_one)
        return self.params.b + (1.0 - self.params.b) * (1.0 - math.cos(math.pi * x)) / 2.0

    def describe(self) -> str:
        return f"p = b + (1 − b)·(1 − cos(π·t/{self.steps_to_one}))/2, b = {self.params.b:g}"


class RandomInitBuilder(SuccessorBuilder):
    """Successor modules of the predecessor's layer class with fresh random weights
    (normal, std ``init_std``, as BERT initialises; LayerNorms at 1 and 0)."""

    name = "random-init"
    help = "layers of the predecessor's class with fresh random weights (example plugin)"

    @dataclass
    class Params:
        init_std: float = param(0.02, "standard deviation of the initial weights", min=0.0)

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        import copy

        import torch
        from torch import nn

        modules = nn.ModuleList(copy.deepcopy(predecessor_layers[i]) for i in range(num_modules))
        with torch.no_grad():
            for sub in modules.modules():
                if isinstance(sub, nn.Linear):
                    sub.weight.normal_(0.0, self.params.init_std)
                    if sub.bias is not None:
                        sub.bias.zero_()
                elif isinstance(sub, nn.LayerNorm):
                    sub.reset_parameters()
        modules.requires_grad_(True)
        return modules


class RoFormer(LayerListFamily):
    """RoFormer (Su et al. 2021) encoders: ``roformer.encoder.layer``. The rotary position
    embedding is computed once by the encoder and handed to every layer, so successor
    modules get it as the predecessor's layers do; nothing else is needed."""

    name = "roformer"
    help = "RoFormer encoders, rotary positions (example plugin)"
    model_types = ("roformer",)
    outside = "embeddings (word, token type), the encoder's rotary position table, head"


class Refine(Stage):
    """Fine-tunes a finished successor once more with the task loss at a low learning rate,
    keeping the best dev checkpoint: a small training stage that reaches data, training and
    models through its context only. Its artifact is a successor (``evaluate --successor
    refine`` and ``export --successor refine`` take it)."""

    name = "refine"
    help = "fine-tune the finished successor again at a low learning rate (example plugin)"
    inputs = ("finetune-successor",)
    summary_metrics = ("score",)
    produces_successor = True

    @dataclass
    class Params(TrainingParams):
        epochs: int = param(1, "passes over the training set (epochs)", min=1)
        learning_rate: float = param(1e-5, "peak AdamW learning rate", min=0.0)

    def run(self, ctx: StageContext) -> StageResult:
        source = ctx.inputs["finetune-successor"]
        model, tokenizer = ctx.load_model(source)
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev, or the held-out part of train
        before = ctx.evaluate(model, tokenizer, dev_ds)["score"]
        ctx.log.info(f"refining {source.label} (dev score {before:.2f}) for "
                     f"{ctx.params.epochs} epoch(s) at lr {ctx.params.learning_rate:g}")
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds)
        model = ctx.runtime.unwrap(model)
        ctx.save_model(model, tokenizer)
        method = source.manifest.get("info", {}).get("method", source.label)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model), "score_before": before,
                  "method": f"{method} + refine lr={ctx.params.learning_rate:g}",
                  "optimizer_steps": outcome.steps, "train_seconds": round(outcome.seconds, 2)})


class BalancedClassification(TaskKind):
    """Sequence classification for imbalanced classes (intents, support tickets): reports
    balanced accuracy (the mean recall over classes) and macro-F1, and selects
    checkpoints on macro-F1, so a model cannot win by answering the frequent classes.
    Everything else (model class, encoding, KD loss, majority row) is the contract's
    default, single-label classification."""

    name = "balanced-classification"
    help = "classification of imbalanced classes: balanced accuracy, macro-F1 (selects)"
    metrics = ("balanced_accuracy", "macro_f1")
    score_metrics = ("macro_f1",)

    def metric_values(self, metrics: Sequence[str], predictions, references,
                      label_names: Sequence[str]) -> dict[str, float]:
        """Balanced accuracy and macro-F1 (scikit-learn) of class ids (N,)."""
        from sklearn.metrics import balanced_accuracy_score, f1_score

        fns = {"balanced_accuracy": lambda: balanced_accuracy_score(references, predictions),
               "macro_f1": lambda: f1_score(references, predictions, average="macro",
                                            zero_division=0.0)}
        return {name: float(fns[name]()) for name in metrics}
