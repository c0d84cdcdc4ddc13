"""GLUE metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theseus_cli.data.glue import PAPER_TASKS
from theseus_cli.data.metrics import (
    compute_metrics,
    logits_to_predictions,
    macro_score,
    task_score,
)
from theseus_cli.errors import DataError

REFS = [1, 0, 1, 1, 0]
PREDS = [1, 0, 0, 1, 1]
# Confusion (positive = 1): TP = 2 (rows 0, 3), TN = 1 (row 1), FP = 1 (row 4), FN = 1 (row 2).


def test_accuracy_and_f1():
    m = compute_metrics("MRPC", PREDS, REFS)
    assert list(m) == ["f1", "accuracy"]
    assert m["accuracy"] == pytest.approx(3 / 5)  # 3 of 5 rows right
    # precision = 2/(2+1), recall = 2/(2+1) -> F1 = 2PR/(P+R) = 2/3
    assert m["f1"] == pytest.approx(2 / 3)


def test_matthews():
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))
    #     = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert compute_metrics("CoLA", PREDS, REFS) == {"matthews_correlation": pytest.approx(1 / 6)}
    # a constant prediction: the denominator is 0 and sklearn (like GLUE) reports 0.0
    assert compute_metrics("cola", [1] * 5, REFS)["matthews_correlation"] == 0.0


def test_pearson_and_spearman():
    # x = [1,2,3], y = [1,2,4]: dx = [-1,0,1], dy = [-4/3,-1/3,5/3]
    # r = sum(dx*dy) / sqrt(sum dx^2 * sum dy^2) = 3 / sqrt(2 * 14/3) = sqrt(27/28)
    m = compute_metrics("STS-B", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["pearson"] == pytest.approx(math.sqrt(27 / 28))
    assert m["spearmanr"] == pytest.approx(1.0)  # same order


def test_spearman_with_ties():
    # preds [1,2,2,3] -> ranks [1,2.5,2.5,4] (tie gets the mean rank); refs [1,3,2,4] -> [1,3,2,4]
    # both mean 2.5: dx = [-1.5,0,0,1.5], dy = [-1.5,.5,-.5,1.5]
    # rho = 4.5 / sqrt(4.5 * 5) = 3/sqrt(10)
    m = compute_metrics("stsb", [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0])
    assert m["spearmanr"] == pytest.approx(3 / math.sqrt(10))


def test_constant_regression_is_nan_not_error():
    m = compute_metrics("STS-B", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(m["pearson"]) and math.isnan(m["spearmanr"])


def test_bad_inputs():
    with pytest.raises(DataError, match="equal length"):
        compute_metrics("RTE", [0, 1], [0])
    with pytest.raises(DataError):
        compute_metrics("RTE", [], [])


def test_logits_to_predictions():
    logits = np.array([[0.1, 2.0], [3.0, -1.0], [0.0, 0.5]])
    assert logits_to_predictions("SST-2", logits).tolist() == [1, 0, 1]
    assert logits_to_predictions("STS-B", np.array([[4.5], [0.25]])).tolist() == [4.5, 0.25]
    assert logits_to_predictions("MNLI", np.eye(3)[[2, 0]]).tolist() == [2, 0]
    with pytest.raises(DataError, match=r"\(N, 3\)"):
        logits_to_predictions("MNLI", logits)


def test_task_score():
    assert task_score("MRPC", {"f1": 0.8, "accuracy": 0.7}) == pytest.approx(0.75)
    assert task_score("STS-B", {"pearson": 0.9, "spearmanr": 0.8}) == pytest.approx(0.85)
    assert task_score("MNLI", {"accuracy_matched": 0.84,
                               "accuracy_mismatched": 0.83}) == pytest.approx(0.835)
    assert task_score("CoLA", {"matthews_correlation": 0.5}) == 0.5
    assert task_score("RTE", {"accuracy": 0.6}) == 0.6
    with pytest.raises(DataError, match="lack spearmanr"):
        task_score("STS-B", {"pearson": 0.9})


def test_macro_score():
    scores = dict(zip(PAPER_TASKS, [0.5, 0.8, 0.9, 0.9, 0.9, 0.7, 0.9, 0.9], strict=False))
    # (0.5 + 0.8 + 0.9 + 0.9 + 0.9 + 0.7 + 0.9 + 0.9) / 8 = 6.5 / 8
    assert macro_score({**scores, "WNLI": 0.0}) == pytest.approx(6.5 / 8)  # WNLI ignored
    assert macro_score({k.lower(): v for k, v in scores.items()}) == pytest.approx(6.5 / 8)
    del scores["QQP"], scores["MNLI"]
    with pytest.raises(DataError, match="missing: MNLI, QQP"):
        macro_score(scores)
