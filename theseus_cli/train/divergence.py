"""Stop a training run whose loss or weights stop being finite, before anything is saved.

:class:`DivergenceGuard` is fed the micro-batch losses of every optimizer
step by :func:`theseus_cli.train.loop.train`. A step whose loss is NaN or
infinite on any process is *non-finite*. In fp32 and bf16 the first one ends
the run; with fp16 loss scaling a few in a row are tolerated (the loss scaler
skips such steps and lowers its scale), and the run diverges only when the
loss stays non-finite for more than ``patience`` consecutive optimizer steps.
A checkpoint is never written while the loss is non-finite or the trainable
weights hold a NaN/inf, so the checkpoint left behind is from before the
divergence.
"""

from __future__ import annotations

import math
from typing import Any

from theseus_cli.errors import TrainingDivergedError

#: Consecutive non-finite optimizer steps tolerated with fp16 loss scaling.
FP16_PATIENCE = 10


class DivergenceGuard:
    """Per-run watcher of the training loss (see the module docstring).

    Args:
        label: ``"MRPC/finetune-teacher"`` (task / stage), for messages.
        runtime: the run's ``Runtime`` (precision, processes).
        peak_lr: the configured peak learning rate.
        patience: consecutive non-finite optimizer steps tolerated; None: 0,
            or :data:`FP16_PATIENCE` with fp16.
        checkpoint_hint: callable returning where the last checkpoint is (or None).
    """

    def __init__(self, label: str, runtime: Any, peak_lr: float, patience: int | None = None,
                 checkpoint_hint: Any = None):
        self.label, self.runtime, self.peak_lr = label, runtime, peak_lr
        if patience is None:
            patience = FP16_PATIENCE if runtime.precision == "fp16" else 0
        self.patience = patience
        self.streak = 0
        self.last_finite: tuple[int, float] | None = None  # (optimizer step, mean loss)
        self.checkpoint_hint = checkpoint_hint or (lambda: None)

    @property
    def healthy(self) -> bool:
        """No non-finite step is pending (a checkpoint may be written)."""
        return self.streak == 0

    def after_step(self, step: int, losses: list[float], lr: float) -> None:
        """Account one optimizer step (1-based ``step``) with its micro-batch ``losses``.

        Call it before the optimizer update (identically on every process).

        Raises:
            TrainingDivergedError: the loss is non-finite and patience is used up.
        """
        local_bad = not all(math.isfinite(v) for v in losses)
        bad = self.runtime.any_process(local_bad)
        if not bad:
            self.streak = 0
            self.last_finite = (step, sum(losses) / len(losses))
            return
        self.streak += 1
        if self.streak > self.patience:
            value = next((v for v in losses if not math.isfinite(v)), math.nan)
            self._fail(step, f"the training loss is {value} on optimizer step {step}", lr)

    def check_weights(self, step: int, params: list[Any], names: dict[int, str], lr: float) -> None:
        """Raise if a trainable weight holds NaN/inf (call before writing a checkpoint).

        Raises:
            TrainingDivergedError: names the first non-finite parameter.
        """
        import torch

        bad = next((p for p in params if not torch.isfinite(p.detach()).all()), None)
        if self.runtime.any_process(bad is not None):
            name = names.get(id(bad), "?") if bad is not None else "(on another process)"
            self._fail(step, f"parameter {name} holds NaN/inf after optimizer step {step}", lr)

    def _fail(self, step: int, what: str, lr: float) -> None:
        last = (f"last finite loss {self.last_finite[1]:.4g} at step {self.last_finite[0]}"
                if self.last_finite else "no finite loss yet")
        where = self.checkpoint_hint()
        kept = (f"the last checkpoint from before the divergence is kept ({where}); the same "
                "command resumes from it and diverges again, --restart discards it"
                if where else "no checkpoint was written before it")
        lower = _suggest(self.peak_lr)
        raise TrainingDivergedError(
            f"{self.label} diverged: {what} ({last}; learning rate {lr:.3g} at that step, "
            f"peak {self.peak_lr:.3g}). Nothing was published; {kept}. Rerun with a lower "
            f"learning rate, e.g. --learning-rate {lower}")


def _suggest(lr: float) -> str:
    """A learning rate 10x lower, capped at 5e-5 (the usual BERT fine-tuning range)."""
    value = min(lr / 10.0, 5e-5) if lr > 0 else 2e-5
    return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e+")
