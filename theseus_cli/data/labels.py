"""The labels of a user's task: their one type, finite scores, classes that train has,
BIO tags and their repair. Each check names the file and the line (``row_name``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theseus_cli.data.user_files import row_name
from theseus_cli.errors import DataError


def label_type(values: Sequence[Any], path: Path, fmt: str, column: str) -> str:
    """``"int"``, ``"float"`` or ``"str"``: the one type of a label column.

    Raises:
        DataError: a missing label, or labels of mixed types (both named with their row).
    """
    kinds: dict[str, int] = {}
    for i, v in enumerate(values):
        if v is None or v == "":
            raise DataError(f"{path}: {row_name(path, fmt, i)}: the label column {column!r} is "
                            "empty (or NaN, which reads as empty); every training and "
                            "validation row needs a label, a finite number for a score")
        if isinstance(v, float) and not math.isfinite(v):
            raise DataError(f"{path}: {row_name(path, fmt, i)}: the label column {column!r} holds "
                            f"{v!r}, not a finite number (an empty cell reads as nan); give "
                            "every row a finite label")
        kind = ("int" if isinstance(v, int) and not isinstance(v, bool) else
                "float" if isinstance(v, float) else "str")
        kinds.setdefault(kind, i)
    if len(kinds) > 1:
        shown = ", ".join(f"{k} ({row_name(path, fmt, i)})" for k, i in kinds.items())
        raise DataError(f"{path}: the label column {column!r} mixes types: {shown}; use one "
                        "type (class names, class ids, or numbers for regression)")
    if kinds.keys() == {"str"}:  # a CSV column of "1" and "positive" reads as text
        ids = next((i for i, v in enumerate(values) if str(v).strip().lstrip("-").isdigit()),
                   None)
        names = next((i for i, v in enumerate(values)
                      if not str(v).strip().lstrip("-").isdigit()), None)
        if ids is not None and names is not None:
            raise DataError(
                f"{path}: the label column {column!r} mixes class ids and class names: "
                f"{values[ids]!r} ({row_name(path, fmt, ids)}) and {values[names]!r} "
                f"({row_name(path, fmt, names)}); use one (names, or ids with --labels naming "
                "the classes)")
    return next(iter(kinds), "str")


def float_labels(values: Sequence[Any], path: Path, fmt: str, column: str) -> list[float]:
    """A regression task's labels as finite floats.

    Raises:
        DataError: the first value that is not a finite number, with its line.
    """
    out = []
    for i, v in enumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise DataError(f"{path}: {row_name(path, fmt, i)}: the label column {column!r} of a "
                            f"regression task holds {v!r}, not a number") from None
        if not math.isfinite(x):
            raise DataError(f"{path}: {row_name(path, fmt, i)}: the label column {column!r} holds "
                            f"{v!r}, not a finite number")
        out.append(x)
    return out


def check_known_labels(labels: Sequence[Any], names: Sequence[str], path: Path,
                       split: str) -> None:
    """Every label of ``split`` is a class of train (or of ``--labels``).

    Raises:
        DataError: naming each unknown label with its count and the file.
    """
    known = set(names)
    unknown = Counter(str(v) for v in labels if str(v) not in known)
    if unknown:
        shown = ", ".join(f"{k!r} ({n} rows)" for k, n in unknown.most_common(5))
        raise DataError(f"{path}: the {split} split has labels that train never has: {shown}; "
                        "a class needs training examples (or name every class with --labels)")


def bio_tags(names: Sequence[str]) -> bool:
    """Whether a tag set is BIO/IOB2: every tag ``O`` or ``B-``/``I-`` plus a type, and
    some not ``O``."""
    return any(t[:2] in ("B-", "I-") for t in names) and all(
        t == "O" or t[:2] in ("B-", "I-") for t in names)


def repair_bio(rows: Sequence[Sequence[str]]) -> tuple[list[list[str]], int]:
    """BIO tag rows with each ``I-X`` that does not continue an ``X`` entity (after ``O``,
    at the start, or after another type) made ``B-X``: the reading of seqeval's default
    mode and conlleval, so the scores do not change. Returns ``(rows, tags repaired)``."""
    out, repaired = [], 0
    for row in rows:
        fixed, previous = [], "O"
        for tag in map(str, row):
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                tag, repaired = "B-" + tag[2:], repaired + 1
            fixed.append(tag)
            previous = tag
        out.append(fixed)
    return out, repaired
