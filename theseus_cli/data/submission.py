"""GLUE test-set predictions in the files the GLUE server expects.

One TSV per test split (``CoLA.tsv``, ``MNLI-m.tsv``, ``MNLI-mm.tsv``, ``AX.tsv``, ...)
with the columns ``index`` and ``prediction``; labels are spelled as in the
GLUE data (``0``/``1`` for CoLA, SST-2, MRPC, QQP and WNLI; ``entailment``,
``not_entailment``, ``neutral``, ``contradiction`` for the NLI tasks; a score
in [0, 5] for STS-B). The files are zipped flat, ready to upload.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from theseus_cli.data.glue import PREDICTED_WITH, GlueTask, get_task

ZIP_NAME = "glue_submission.zip"
STSB_RANGE = (0.0, 5.0)


def prediction_strings(task: GlueTask, logits: Any) -> list[str]:
    """Leaderboard strings for logits of shape (N, num_labels).

    STS-B scores are clipped to [0, 5] and written with 3 decimals; classes are
    written as the task's label tokens.
    """
    import numpy as np

    from theseus_cli.data.metrics import logits_to_predictions

    preds = logits_to_predictions(task, np.asarray(logits))
    if task.is_regression:
        return [f"{min(max(float(p), STSB_RANGE[0]), STSB_RANGE[1]):.3f}" for p in preds]
    return [task.label_tokens[int(p)] for p in preds]


def answered_test_splits(task: GlueTask) -> list[tuple[GlueTask, str]]:
    """``(task whose data is predicted, test split)`` pairs a model of ``task`` answers.

    An MNLI model also answers the diagnostic set AX.
    """
    pairs = [(task, split) for split in task.test_splits]
    for other, source in PREDICTED_WITH.items():
        if source == task.name:
            t = get_task(other)
            pairs += [(t, split) for split in t.test_splits]
    return pairs


def write_predictions(path: Path, indices: list[int], predictions: list[str]) -> None:
    """Write one leaderboard file: header ``index\\tprediction``, one row per example."""
    if len(indices) != len(predictions):
        raise ValueError(f"{len(indices)} indices but {len(predictions)} predictions")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("index\tprediction\n")
        for i, p in zip(indices, predictions, strict=False):
            f.write(f"{i}\t{p}\n")


def zip_submission(files: list[Path], dest: Path) -> Path:
    """Zip leaderboard files flat (no folders) into ``dest``, atomically."""
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(files, key=lambda p: p.name):
            z.write(f, arcname=f.name)
    os.replace(tmp, dest)
    return dest
