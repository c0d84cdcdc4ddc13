"""GLUE splits from the classic TSV files (validated, with file and line in every
error) or from the Hugging Face Hub, as ``datasets.Dataset``s with Hub column names."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from theseus_cli.data.glue import Column, GlueTask, get_task
from theseus_cli.data.user_files import utf8_text
from theseus_cli.errors import ConfigError, DataError

if TYPE_CHECKING:
    import datasets

GLUE_DIR_ENV = "THESEUS_GLUE_DIR"
HUB_DATASET = "nyu-mll/glue"
STSB_SCORE_RANGE = (0.0, 5.0)
WHERE_DATA = (f"point at a GLUE download with --glue-dir or {GLUE_DIR_ENV}, or leave "
               f"both unset to load {HUB_DATASET} from the Hugging Face Hub")


def resolve_glue_dir(glue_dir: str | Path | None) -> Path | None:
    """Choose the local GLUE folder: ``glue_dir``, else ``$THESEUS_GLUE_DIR``.

    Returns ``None`` when neither is set (empty strings count as unset),
    meaning "load from the Hugging Face Hub". The path is not checked here;
    :func:`read_tsv_split` reports a missing folder or file.
    """
    value = glue_dir if glue_dir not in (None, "") else os.environ.get(GLUE_DIR_ENV)
    return Path(value).expanduser() if value else None


def checkout_glue_dir(repository: Path) -> Path:
    """Where scripts run from a checkout (the benchmarks, the real-data tests) find GLUE:
    ``$THESEUS_GLUE_DIR``, else ``../shared/glue`` beside the ``repository`` root. The one
    place this rule lives; the CLI itself takes ``--glue-dir`` or ``$THESEUS_GLUE_DIR``
    (:func:`resolve_glue_dir`)."""
    return resolve_glue_dir(None) or Path(repository).resolve().parent / "shared" / "glue"


def _column_index(col: Column, header: list[str] | None, path: Path) -> int:
    """Resolve a layout column (position or header name) to a position."""
    if isinstance(col, int):
        return col
    if header is None or col not in header:
        raise DataError(f"{path}: line 1: header has no column {col!r}; "
                        f"header is {header!r}")
    return header.index(col)


def read_tsv_split(task: GlueTask | str, split: str, glue_dir: str | Path) -> dict[str, list]:
    """Parse and validate one GLUE TSV file.

    Reads ``task.tsv_path(glue_dir, split)`` with ``csv`` (tab-separated,
    quotes are literal characters, UTF-8 with an optional BOM).

    Returns:
        Columns of equal length N (data rows), named as on the Hub:
        ``idx`` (int: the file's index column, else the 0-based row number),
        each of ``task.text_fields`` (str), and ``label`` (int class id in
        ``task.label_names`` order, float score for STS-B, -1 on test splits).

    Raises:
        UnknownNameError: ``split`` is not a split of ``task`` / unknown task.
        DataError: the folder or file is missing (names the path looked for and
            how to point at data), or a row is malformed: wrong column count,
            unknown label (lists accepted ones), empty text, non-numeric or
            non-integer index, non-numeric STS-B score, or no data rows. Row
            errors name the file and the 1-based line number.
    """
    task = get_task(task)
    layout = task.layout(split)
    path = task.tsv_path(glue_dir, split)
    if not path.parent.is_dir():
        raise DataError(f"no {task.name} data: folder {path.parent} does not exist "
                        f"(looked for {path}); {WHERE_DATA}")
    if not path.is_file():
        raise DataError(f"no {task.name} {split} data: file {path} does not exist; {WHERE_DATA}")
    out: dict[str, list] = {"idx": [], **{f: [] for f in task.text_fields}, "label": []}
    is_test = task.is_test(split)
    text = _decode(path, split)
    with io.StringIO(text, newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quotechar=None, quoting=csv.QUOTE_NONE)
        header = next(reader, None) if layout.header else None
        ncols = len(header) if header is not None else layout.num_columns
        texts = [_column_index(c, header, path) for c in layout.text_columns]
        label_col = index_col = None
        if not is_test and layout.label_column is not None:
            label_col = _column_index(layout.label_column, header, path)
        if layout.index_column is not None:
            index_col = _column_index(layout.index_column, header, path)
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if ncols is not None and len(row) != ncols:
                raise DataError(f"{where}: expected {ncols} tab-separated columns, "
                                f"found {len(row)}")
            for field, col in zip(task.text_fields, texts, strict=False):
                if not row[col].strip():
                    raise DataError(f"{where}: empty text in column {col} ({field})")
                out[field].append(row[col])
            out["idx"].append(_parse_index(row, index_col, len(out["idx"]), where))
            out["label"].append(-1 if label_col is None else _parse_label(task, row[label_col], where))
    if not out["idx"]:
        what = "only a header line" if layout.header else "no lines"
        raise DataError(f"{path}: the {task.name} {split} split has no rows ({what}); "
                        "restore the file from the GLUE download")
    return out


def _decode(path: Path, split: str) -> str:
    """The file's text (UTF-8, optional BOM).

    Raises:
        DataError: the file is empty, or holds a byte that is not UTF-8 (names the
            line and the byte offset in the file).
    """
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the {split} split has no rows (the file is empty, "
                        f"{len(raw)} bytes); restore the file from the GLUE download")
    return utf8_text(path, raw, "GLUE files are UTF-8: re-save the file as UTF-8 or restore "
                                "it from the GLUE download")


def _parse_index(row: list[str], col: int | None, row_number: int, where: str) -> int:
    """The row's index column as int, or ``row_number`` when there is none."""
    if col is None:
        return row_number
    try:
        return int(row[col])
    except ValueError:
        raise DataError(f"{where}: index {row[col]!r} is not an integer") from None


def _parse_label(task: GlueTask, value: str, where: str) -> int | float:
    """A label cell as class id, or as float score for regression tasks."""
    if task.is_regression:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise DataError(f"{where}: score {value!r} is not a number")
        if not STSB_SCORE_RANGE[0] <= score <= STSB_SCORE_RANGE[1]:
            raise DataError(f"{where}: score {value!r} is outside [{STSB_SCORE_RANGE[0]:g}, "
                            f"{STSB_SCORE_RANGE[1]:g}], the STS-B similarity scale")
        return score
    if value not in task.label_tokens:
        raise DataError(f"{where}: unknown label {value!r}; accepted: "
                        f"{', '.join(task.label_tokens)} ({', '.join(task.label_names)})")
    return task.label_tokens.index(value)


def load_split(task: GlueTask | str, split: str, glue_dir: str | Path | None = None,
               max_samples: int | None = None) -> datasets.Dataset:
    """Load one split as a ``datasets.Dataset`` with Hub column names.

    From the GLUE folder (``glue_dir`` or ``$THESEUS_GLUE_DIR``) when one is
    set, else from the Hub dataset ``nyu-mll/glue`` (split ``dev`` ->
    ``validation``, ``dev_matched`` -> ``validation_matched``, ...). Columns:
    ``idx``, the text fields, ``label`` (see :func:`read_tsv_split`).

    Args:
        max_samples: keep only the first N rows (N >= 1); ``None`` keeps all.

    Raises:
        ConfigError: ``max_samples`` < 1.
        UnknownNameError: unknown task or split.
        DataError: missing/malformed local files, or the Hub load failed.
    """
    import datasets

    task = get_task(task)
    task.file_name(split)
    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"max_samples must be >= 1, got {max_samples}")
    if not isinstance(task, GlueTask):  # a user's task reads its own files
        ds = task.load(split)
        return ds.select(range(min(max_samples, len(ds)))) if max_samples else ds
    root = resolve_glue_dir(glue_dir)
    if root is not None:
        cols = read_tsv_split(task, split, root)
        if max_samples is not None:
            cols = {k: v[:max_samples] for k, v in cols.items()}
        label = (datasets.Value("float32") if task.is_regression
                 else datasets.ClassLabel(names=list(task.label_names)))
        features = datasets.Features({"idx": datasets.Value("int32"),
                                      **{f: datasets.Value("string") for f in task.text_fields},
                                      "label": label})
        return datasets.Dataset.from_dict(cols, features=features)
    try:
        ds = datasets.load_dataset(HUB_DATASET, task.hub_config, split=task.hub_split(split))
    except Exception as exc:  # network, auth, missing config: all "no data"
        raise DataError(f"could not load {HUB_DATASET}/{task.hub_config} split "
                        f"{task.hub_split(split)!r} from the Hugging Face Hub ({exc}); "
                        f"{WHERE_DATA}") from exc
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    return ds
