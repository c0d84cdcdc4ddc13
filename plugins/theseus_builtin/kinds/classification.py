"""One label per text or text pair: classes (GLUE's classification tasks, intents) or a
score (STS-B)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from theseus_cli.plugin import TaskKind


class SequenceClassification(TaskKind):
    """Single-label classification of a text or pair, 2 to hundreds of classes."""

    name = "sequence-classification"
    help = "one class per text or text pair: accuracy and macro-F1 (GLUE's own metrics)"

    def metric_values(self, metrics: Sequence[str], predictions: Any, references: Any,
                      label_names: Sequence[str]) -> dict[str, float]:
        """``metrics`` by name, GLUE's among them (``f1``, ``matthews_correlation``)."""
        from theseus_cli.data.metrics import sequence_metric_values

        return sequence_metric_values(metrics, predictions, references)


class Regression(TaskKind):
    """A real-valued score per text or pair (one output unit, mean squared error loss)."""

    name = "regression"
    help = "a score per text or text pair: Pearson and Spearman correlation, MSE"
    metrics = ("pearson", "spearmanr", "mse")
    score_metrics = ("pearson", "spearmanr")
    regression = True
    trivial_name = "training mean"

    def label_names(self, train_labels: Sequence[Any], given: Sequence[str] | None) -> list[str]:
        """None: a score has no classes."""
        return []

    def predictions(self, logits: Any) -> Any:
        """Logits (N, 1) or (N,) -> scores (N,) float64."""
        import numpy as np

        arr = np.asarray(logits)
        return (arr[:, 0] if arr.ndim == 2 else arr).astype(np.float64)

    def metric_values(self, metrics: Sequence[str], predictions: Any, references: Any,
                      label_names: Sequence[str]) -> dict[str, float]:
        """Pearson, Spearman (SciPy; NaN for constant inputs) and MSE of scores (N,)."""
        from theseus_cli.data.metrics import sequence_metric_values

        return sequence_metric_values(metrics, predictions, references)

    def trivial_predictions(self, train_labels: Any, references: Any) -> Any:
        """The training set's mean score for every example."""
        import numpy as np

        mean = float(np.mean(np.asarray(train_labels, dtype=np.float64)))
        return np.full(np.asarray(references).shape, mean, dtype=np.float64)

    def distill_loss(self, student: Any, teacher: Any, batch: dict[str, Any], alpha: float,
                     temperature: float) -> Any:
        """``(1 − α) MSE(z_s, y) + α MSE(z_s, z_t)`` over scores (B, 1); T is not used."""
        import torch.nn.functional as F

        teacher = teacher.detach().to(student.dtype)
        task = F.mse_loss(student.view(-1), batch["labels"].to(student.dtype).view(-1))
        if alpha == 0.0:
            return task
        soft = F.mse_loss(student.view(-1), teacher.view(-1))
        return (1.0 - alpha) * task + alpha * soft
