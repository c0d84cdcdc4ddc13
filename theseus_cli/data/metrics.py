"""Task metrics (scikit-learn / SciPy / seqeval), per-task scores and the GLUE macro score.

All values are fractions or correlations in [-1, 1] (not multiplied by 100).
Edge cases follow the libraries: a constant prediction gives Matthews 0.0
(scikit-learn); constant predictions or references give Pearson/Spearman
``nan`` (SciPy), which is returned as is rather than raising.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from theseus_cli.data.glue import PAPER_TASKS, GlueTask, get_task
from theseus_cli.errors import DataError
from theseus_cli.plugin.registry import kind_of


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    """SciPy correlation statistic as float; ``nan`` when undefined."""
    if len(x) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning -> nan
        return float(fn(x, y)[0])


def sequence_metric_values(metrics: Sequence[str], predictions: np.ndarray,
                           references: np.ndarray) -> dict[str, float]:
    """``metrics`` of one label per example (class ids, or float scores for regression).

    Names: ``accuracy``, ``f1`` (binary, positive class 1), ``macro_f1``,
    ``matthews_correlation``, ``pearson``, ``spearmanr``, ``mse``; values are fractions or
    correlations in [-1, 1] (``mse`` in squared label units), ``nan`` for a correlation of
    constant inputs (or N < 2).

    Raises:
        KeyError: an unknown metric name.
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    preds, refs = np.asarray(predictions), np.asarray(references)
    fns = {
        "accuracy": lambda: accuracy_score(refs, preds),
        "f1": lambda: f1_score(refs, preds, pos_label=1, average="binary", zero_division=0.0),
        "matthews_correlation": lambda: matthews_corrcoef(refs, preds),
        "pearson": lambda: _correlation(pearsonr, preds, refs),
        "spearmanr": lambda: _correlation(spearmanr, preds, refs),
        "macro_f1": lambda: f1_score(refs, preds, average="macro", zero_division=0.0),
        "mse": lambda: float(np.mean((preds - refs) ** 2)),
    }
    return {name: float(fns[name]()) for name in metrics}


def compute_metrics(task: GlueTask | str, predictions: Sequence | np.ndarray,
                    references: Sequence | np.ndarray) -> dict[str, float]:
    """The metrics ``task`` reports (``task.metrics``), computed by its kind
    (:func:`kind_of`: GLUE tasks are ``sequence-classification`` or ``regression``).

    Args:
        predictions: shape (N,): class ids, or float scores for regression; (N, L) tag
            ids for a token-level kind.
        references: the same shape; token-level: -100 where a position has no label.

    Returns:
        Metric name -> value (fractions or correlations in [-1, 1]; ``nan`` for a
        correlation of constant inputs or N < 2).

    Raises:
        DataError: shapes differ, N == 0, or a wrong number of dimensions.
        UnknownNameError: unknown task or task kind.
    """
    task = get_task(task)
    kind = kind_of(task)
    preds, refs = np.asarray(predictions), np.asarray(references)
    ndim = 2 if kind.token_level else 1
    if preds.ndim != ndim or preds.shape != refs.shape or len(preds) == 0:
        raise DataError(f"{task.name}: predictions {preds.shape} and references "
                        f"{refs.shape} must be non-empty {ndim}-D arrays of equal length and shape")
    if kind.regression:
        preds, refs = preds.astype(np.float64), refs.astype(np.float64)
    else:
        preds, refs = preds.astype(np.int64), refs.astype(np.int64)
    return kind.metric_values(task.metrics, preds, refs, task.label_names)


def logits_to_predictions(task: GlueTask | str, logits: np.ndarray) -> np.ndarray:
    """Model outputs to predictions (the task kind's :meth:`predictions`).

    Args:
        logits: shape (N, num_labels) (or (N,) for regression); (N, L, num_labels) for a
            token-level kind.

    Returns:
        Shape (N,): argmax class ids (int64), or the scores (float) for regression;
        (N, L) tag ids for a token-level kind.

    Raises:
        DataError: ``logits`` does not have the kind's shape.
    """
    task = get_task(task)
    kind = kind_of(task)
    arr = np.asarray(logits)
    if kind.regression and arr.ndim == 1:
        return arr.astype(np.float64)
    ndim = 3 if kind.token_level else 2
    if arr.ndim != ndim or arr.shape[-1] != task.num_labels:
        shape = "(N, L, " if kind.token_level else "(N, "
        raise DataError(f"{task.name}: expected logits of shape {shape}{task.num_labels}), "
                        f"got {arr.shape}")
    return kind.predictions(arr)


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
    else:  # its kind's: accuracy; Pearson and Spearman for regression; entity F1 ...
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


def score_drop_interval(task: GlueTask | str, reference: np.ndarray, candidate: np.ndarray,
                        labels: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                        seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap interval of ``score(reference) − score(candidate)`` (fractions, as
    ``score``): how far the drop of one model's score below another's, on the same
    examples, could move by the luck of which examples the set holds.

    The examples (rows of ``reference`` and ``candidate`` logits, (N, ...), and of
    ``labels``, (N, ...)) are resampled together with replacement ``resamples`` times
    (``scipy.stats.bootstrap``, percentile method, seeded: the same arrays give the same
    interval); each resample scores both models (:func:`score_logits`). Source: Efron &
    Tibshirani (1993), the paired bootstrap of Koehn (2004) for comparing two systems on
    one test set.

    Returns:
        ``(low, high)``, the ``confidence`` interval of the drop; NaN when some resample
        has no finite score (e.g. a correlation of constant predictions).
    """
    from scipy.stats import bootstrap

    def drop(rows: np.ndarray) -> float:
        rows = rows.astype(int)
        return (score_logits(task, reference[rows], labels[rows])["score"]
                - score_logits(task, candidate[rows], labels[rows])["score"])

    # SciPy >= 1.15 names the generator rng, older ones random_state
    generator = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    with np.errstate(all="ignore"):
        res = bootstrap((np.arange(len(labels)),), drop, vectorized=False,
                        n_resamples=resamples, confidence_level=confidence, method="percentile",
                        **{generator: np.random.default_rng(seed)})
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


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


def entity_metric_values(metrics: Sequence[str], predictions: np.ndarray, references: np.ndarray,
                         label_names: Sequence[str]) -> dict[str, float]:
    """Metrics of one tag per word: entity-level ``entity_precision``, ``entity_recall`` and
    ``entity_f1`` (exact span and type, as ``seqeval`` reads BIO/IOB2 tags in its default
    mode: an ``I-X`` after ``O`` starts an entity, as conlleval does) and ``token_accuracy``
    (share of words whose tag is right), fractions in [0, 1].

    Args:
        predictions, references: (N, L) tag ids; positions where ``references`` is -100
            (special tokens, continuation subwords, padding) are left out.
        label_names: tag names in id order.

    Raises:
        KeyError: an unknown metric name.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    keep = references != -100  # (N, L) bool: the first subword of each word
    names = np.asarray(label_names, dtype=object)
    pred_tags = [list(names[p[k]]) for p, k in zip(predictions, keep, strict=True)]
    ref_tags = [list(names[r[k]]) for r, k in zip(references, keep, strict=True)]
    words = int(keep.sum())
    fns = {
        "entity_precision": lambda: precision_score(ref_tags, pred_tags, zero_division=0),
        "entity_recall": lambda: recall_score(ref_tags, pred_tags, zero_division=0),
        "entity_f1": lambda: f1_score(ref_tags, pred_tags, zero_division=0),
        "token_accuracy": lambda: (float((predictions[keep] == references[keep]).sum()) / words
                                   if words else math.nan),
    }
    return {name: float(fns[name]()) for name in metrics}
