"""The task-kind contract: what a kind of task brings to every stage.

A task is data + a kind + metrics. The kind (``sequence-classification``,
``regression``, ``token-classification``, or a third party's) says which
``transformers`` Auto class holds the model, how examples are tokenised and their
labels aligned, how logits become predictions, which metrics are reported and which
select checkpoints, what the trivial reference row predicts, and the distillation
loss. Module replacing itself does not care about the head: the same hybrid serves
every kind.

The defaults here are those of single-label sequence classification, so a kind that
differs only in its metrics overrides :meth:`TaskKind.metric_values` and the
``metrics`` / ``score_metrics`` attributes. Heavy libraries (NumPy, torch,
scikit-learn, transformers) are imported inside the methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from theseus_cli.plugin.base import Plugin

#: label id of a position that carries no label (padding, special tokens, continuation
#: subwords): ignored by the loss and the metrics, as in ``transformers``
IGNORE_INDEX = -100


class TaskKind(Plugin):
    """A kind of task (entry-point group ``theseus.task_kinds``).

    Attributes:
        model_class: the ``transformers`` Auto class of its models
            (``AutoModelForSequenceClassification``); exported models load with it.
        metrics: metric names it reports (keys of :meth:`metric_values`).
        score_metrics: those whose mean is the ``score`` that selects checkpoints
            (higher is better).
        regression: labels are float scores and the head has one output.
        token_level: one label per word (logits (N, L, C), labels (N, L) with
            :data:`IGNORE_INDEX` where no label is).
        trivial_name: how tables name the trivial reference row.
    """

    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    metrics: ClassVar[tuple[str, ...]] = ("accuracy", "macro_f1")
    score_metrics: ClassVar[tuple[str, ...]] = ("accuracy",)
    regression: ClassVar[bool] = False
    token_level: ClassVar[bool] = False
    trivial_name: ClassVar[str] = "majority class"

    # ------------------------------------------------------------------ labels
    def metric_names(self, label_names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(metrics, score_metrics)`` of a task with these classes (default: the class
        attributes; a kind may choose by its label set, e.g. BIO tags or plain ones)."""
        return self.metrics, self.score_metrics

    def label_names(self, train_labels: Sequence[Any], given: Sequence[str] | None) -> list[str]:
        """Class names in id order: ``given`` (``--labels``) as given, else the names seen in
        train, sorted (class ids numerically), so the order never depends on which rows
        came first.

        Args:
            train_labels: the label cells of the training file (one per row; a list
                per row for token-level kinds).
        """
        if given:
            return [str(n) for n in given]
        values = set(train_labels)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return [str(v) for v in sorted(values)]
        return sorted(str(v) for v in values)

    # ------------------------------------------------------------ tokenisation
    def encode(self, tokenizer: Any, texts: Sequence[Sequence[Any]], labels: Sequence[Any],
               max_length: int) -> dict[str, list]:
        """Model inputs and ``labels`` of a batch of rows (``datasets.map``, batched).

        Args:
            texts: one column per text field, each a list of B cells (strings; lists of
                words for token-level kinds).
            labels: B labels (class ids, scores, or lists of tag ids).
            max_length: tokens per example at most, special tokens included.

        Returns:
            ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the
            tokenizer makes them): B lists of ints, unpadded; ``labels``: B labels.
        """
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        out = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}
        out["labels"] = list(labels)
        return out

    # -------------------------------------------------------------- predictions
    def predictions(self, logits: Any) -> Any:
        """Logits (N, num_labels) -> predictions (N,): argmax class ids (int64)."""
        import numpy as np

        return np.asarray(logits).argmax(axis=-1).astype(np.int64)

    def metric_values(self, metrics: Sequence[str], predictions: Any, references: Any,
                      label_names: Sequence[str]) -> dict[str, float]:
        """``metrics`` of ``predictions`` against ``references`` (both (N,) class ids), as
        fractions in [0, 1]: ``accuracy`` and ``macro_f1`` (scikit-learn).

        Raises:
            KeyError: a metric name this kind cannot compute.
        """
        from sklearn.metrics import accuracy_score, f1_score

        fns = {"accuracy": lambda: accuracy_score(references, predictions),
               "macro_f1": lambda: f1_score(references, predictions, average="macro",
                                            zero_division=0.0)}
        return {name: float(fns[name]()) for name in metrics}

    def trivial_predictions(self, train_labels: Any, references: Any) -> Any:
        """What the trivial reference row predicts for ``references`` (the shape of the
        labels): the training set's most frequent class for every example."""
        import numpy as np

        refs = np.asarray(references)
        majority = int(np.bincount(np.asarray(train_labels, dtype=np.int64)).argmax())
        return np.full(refs.shape, majority, dtype=np.int64)

    # ------------------------------------------------------------- distillation
    def distill_loss(self, student: Any, teacher: Any, batch: dict[str, Any], alpha: float,
                     temperature: float) -> Any:
        """Vanilla KD (Hinton et al. 2015): ``(1 − α) CE(z_s, y) + α T² KL(p_t ‖ p_s)``.

        Args:
            student: (B, C) successor logits; teacher: (B, C) teacher logits.
            batch: the batch (``labels`` (B,) int64).
            alpha: distillation weight α in [0, 1]; temperature: T > 0.

        Returns:
            A scalar tensor, the mean over the batch.
        """
        import torch.nn.functional as F

        teacher = teacher.detach().to(student.dtype)
        task = F.cross_entropy(student, batch["labels"])
        if alpha == 0.0:
            return task
        t = temperature
        soft = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                        reduction="batchmean", log_target=True)
        return (1.0 - alpha) * task + alpha * t * t * soft
