"""GLUE metrics (scikit-learn / SciPy), per-task scores and the macro score.

All values are fractions or correlations in [-1, 1] (not multiplied by 100).
Edge cases follow the libraries: a constant prediction gives Matthews 0.0
(scikit-learn); constant predictions or references give Pearson/Spearman
``nan`` (SciPy), which is returned as is rather than raising.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from theseus_cli.data.glue import PAPER_TASKS, GlueTask, get_task
from theseus_cli.errors import DataError


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    """SciPy correlation statistic as float; ``nan`` when undefined."""
    if len(x) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning -> nan
        return float(fn(x, y)[0])


def compute_metrics(task: GlueTask | str, predictions: Sequence | np.ndarray,
                    references: Sequence | np.ndarray) -> dict[str, float]:
    """The metrics GLUE reports for ``task`` (``task.metrics``).

    Args:
        predictions: shape (N,): class ids, or float scores for STS-B.
        references: shape (N,): gold class ids / scores.

    Returns:
        Keys among ``accuracy``, ``f1`` (binary, positive class 1),
        ``matthews_correlation``, ``pearson``, ``spearmanr``; floats in [-1, 1],
        ``nan`` for a correlation of constant inputs (or N < 2).

    Raises:
        DataError: lengths differ, N == 0, or the arrays are not 1-D.
        UnknownNameError: unknown task name.
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    task = get_task(task)
    preds, refs = np.asarray(predictions), np.asarray(references)
    if preds.ndim != 1 or refs.ndim != 1 or len(preds) != len(refs) or len(preds) == 0:
        raise DataError(f"{task.name}: predictions {preds.shape} and references "
                        f"{refs.shape} must be non-empty 1-D arrays of equal length")
    if task.is_regression:
        preds, refs = preds.astype(np.float64), refs.astype(np.float64)
    else:
        preds, refs = preds.astype(np.int64), refs.astype(np.int64)
    fns = {
        "accuracy": lambda: accuracy_score(refs, preds),
        "f1": lambda: f1_score(refs, preds, pos_label=1, average="binary", zero_division=0.0),
        "matthews_correlation": lambda: matthews_corrcoef(refs, preds),
        "pearson": lambda: _correlation(pearsonr, preds, refs),
        "spearmanr": lambda: _correlation(spearmanr, preds, refs),
        "macro_f1": lambda: f1_score(refs, preds, average="macro", zero_division=0.0),
        "mse": lambda: float(np.mean((preds - refs) ** 2)),
    }
    return {name: float(fns[name]()) for name in task.metrics}


def logits_to_predictions(task: GlueTask | str, logits: np.ndarray) -> np.ndarray:
    """Model outputs to predictions.

    Args:
        logits: shape (N, num_labels) (or (N,) for regression).

    Returns:
        Shape (N,): argmax class ids (int64), or the scores (float) for STS-B.

    Raises:
        DataError: ``logits`` does not have shape (N, task.num_labels).
    """
    task = get_task(task)
    arr = np.asarray(logits)
    if task.is_regression and arr.ndim == 1:
        return arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] != task.num_labels:
        raise DataError(f"{task.name}: expected logits of shape (N, {task.num_labels}), "
                        f"got {arr.shape}")
    if task.is_regression:
        return arr[:, 0].astype(np.float64)
    return arr.argmax(axis=-1).astype(np.int64)


def task_score(task: GlueTask | str, metrics: Mapping[str, float]) -> float:
    """The paper's single dev number for a task (section 4.1), in [-1, 1].

    MRPC/QQP: mean of ``f1`` and ``accuracy``; STS-B: mean of ``pearson`` and
    ``spearmanr``; CoLA/AX: ``matthews_correlation``; MNLI: mean of
    ``accuracy_matched`` and ``accuracy_mismatched`` (``accuracy`` if only that
    is given); others: ``accuracy``. Also the value that picks the best dev
    checkpoint (higher is better).

    Raises:
        DataError: a needed metric is missing from ``metrics``.
    """
    task = get_task(task)
    if task.name == "MNLI" and "accuracy_matched" in metrics:
        names: Sequence[str] = ("accuracy_matched", "accuracy_mismatched")
    else:  # a user's task names its own (accuracy; Pearson and Spearman for regression)
        names = getattr(task, "score_metrics", task.metrics)
    missing = [n for n in names if n not in metrics]
    if missing:
        raise DataError(f"{task.name}: cannot score, metrics lack {', '.join(missing)}; "
                        f"got {', '.join(sorted(metrics)) or '(none)'}")
    return float(np.mean([metrics[n] for n in names]))


def score_logits(task: GlueTask | str, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """GLUE metrics of ``logits`` (N, num_labels) against ``labels`` (N,), plus ``score``
    (:func:`task_score`). Logits holding NaN/inf make every metric NaN: an argmax over NaN
    would otherwise score as "always class 0"."""
    metrics = compute_metrics(task, logits_to_predictions(task, logits), labels)
    if not np.isfinite(logits).all():
        metrics = {k: math.nan for k in metrics}
    metrics["score"] = task_score(task, metrics)
    return metrics


def macro_score(scores: Mapping[str, float]) -> float:
    """Mean of :func:`task_score` values over the 8 :data:`PAPER_TASKS`.

    Args:
        scores: task name (any alias accepted by ``get_task``) -> task score.
            Other tasks (WNLI, AX) are ignored.

    Raises:
        DataError: some of the 8 tasks are missing (names them).
        UnknownNameError: a key is not a task name.
    """
    by_name = {get_task(name).name: value for name, value in scores.items()}
    missing = [t for t in PAPER_TASKS if t not in by_name]
    if missing:
        raise DataError(f"macro score needs all of {', '.join(PAPER_TASKS)}; "
                        f"missing: {', '.join(missing)}")
    return float(np.mean([by_name[t] for t in PAPER_TASKS]))
