"""Settings and results of training stages, as values: what a stage plugin that trains
declares (its ``Params`` mix in :class:`TrainingParams`, and :class:`DistillParams` to offer
vanilla KD) and what :meth:`~theseus_cli.plugin.StageContext.train` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from theseus_cli.plugin.base import param


@dataclass
class TrainingParams:
    """Settings every training stage shares (units: epochs, optimizer steps)."""

    epochs: int = param(3, "passes over the training set (epochs); with patience, the most it "
                           "trains", min=1)
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
    patience: int | None = param(
        None, "early stopping: stop after this many dev evaluations in a row without a new best "
              "score; null: train every epoch", min=1)
    save_every: int | None = param(
        200, "save a resumable checkpoint every N optimizer steps; null: not by steps", min=1,
        fingerprint=False)
    save_every_minutes: float | None = param(
        10.0, "also save one when this many minutes (wall time) passed since the last; "
              "null or 0: not by time", min=0.0, fingerprint=False)
    max_nonfinite_steps: int | None = param(
        None, "consecutive optimizer steps with a NaN/inf training loss tolerated before the run "
              "counts as diverged; null: 0, or 10 with fp16 loss scaling", min=0,
        fingerprint=False)
    group_by_length: bool = param(
        True, "batch training examples of similar length together (as transformers' "
              "group_by_length), so padding is near zero; the order stays deterministic per seed")


@dataclass
class TrainOutcome:
    """Result of :func:`train`; the model holds the best dev weights afterwards."""

    best_score: float
    best_metrics: dict[str, float]
    best_step: int
    steps: int
    seconds: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    #: why training ended: ``"patience"`` (early stop), ``"max_epochs"`` or ``"max_steps"``
    stop_reason: str = "max_epochs"
    #: optimizer steps per epoch of this run (to turn ``best_step`` into epochs)
    steps_per_epoch: int = 1
    #: the split the scores are on, as output names it: ``"dev"`` or ``"held-out"``
    split: str = "dev"

    @property
    def best_epoch(self) -> float:
        """The epoch (1-based, fractional between epoch ends) of the best dev score."""
        return round(self.best_step / max(1, self.steps_per_epoch), 2)

    @property
    def still_rising(self) -> bool:
        """Training ran to its maximum, its last evaluation was the best, and it beat the one
        before: more epochs would probably have helped (:func:`rising_at_end`)."""
        return rising_at_end(self.stop_reason, self.best_step, self.evaluations)

    def stop_record(self) -> dict[str, Any]:
        """What manifests record of the run's end: ``stop_reason``, ``stopped_at_step``,
        ``stopped_at_epoch``, ``best_step``, ``best_epoch``, ``steps_per_epoch``."""
        return {"stop_reason": self.stop_reason, "stopped_at_step": self.steps,
                "stopped_at_epoch": round(self.steps / max(1, self.steps_per_epoch), 2),
                "best_step": self.best_step, "best_epoch": self.best_epoch,
                "steps_per_epoch": self.steps_per_epoch}

    def stop_line(self) -> str:
        """One line for a stage's output: why it stopped and where the best came."""
        why = {"patience": f"early stop: no new best {self.split} score in the last evaluations",
               "max_epochs": "the maximum number of epochs", "max_steps": "max_steps"}
        where = (f"step {self.best_step} (epoch {self.best_epoch:g})" if self.best_step else
                 "step 0, the input before any training (kept unchanged: no epoch beat it)")
        rising = ("; still rising at the maximum: more epochs (or a higher learning rate) "
                  "would probably help" if self.still_rising else "")
        return (f"stopped at step {self.steps} (epoch {self.steps / max(1, self.steps_per_epoch):.2f})"
                f" by {why.get(self.stop_reason, self.stop_reason)}; best {self.split} score at {where}"
                + rising)


def rising_at_end(stop_reason: str | None, best_step: int | None,
                  evaluations: list[dict[str, Any]] | None) -> bool:
    """A run (as its manifest records it: ``stop_reason``, ``best_step``, ``evaluations``
    with ``step`` and ``dev_score``) ran to its maximum, and its last evaluation was its
    best and beat the one before: more epochs would probably have helped."""
    ev = [e.get("dev_score") for e in evaluations or []]
    return (stop_reason not in (None, "patience") and len(ev) >= 2
            and evaluations[-1].get("step") == best_step
            and ev[-1] is not None and ev[-2] is not None and ev[-1] > ev[-2])


@dataclass
class DistillParams:
    """Distillation settings shared by the stages that offer it."""

    distill_weight: float = param(
        0.0, "α: weight of the distillation term, (1 − α)·task loss + α·T²·KL (MSE for STS-B); "
             "0 = task loss only (the paper)", min=0.0, max=1.0)
    temperature: float = param(2.0, "T: softmax temperature of the distillation term", min=0.01)
