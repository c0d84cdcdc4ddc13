"""GLUE data: read the classic TSV files (or the Hub), tokenise, batch.

Pipeline: :func:`load_split` -> :func:`tokenize_split` -> :func:`make_dataloader`.
The TSV layout of every task comes from :mod:`theseus_cli.glue`; nothing here
is task-specific. ``datasets``, ``torch`` and ``transformers`` are imported
inside the functions that need them.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theseus_cli.errors import ConfigError, DataError
from theseus_cli.glue import Column, GlueTask, get_task

if TYPE_CHECKING:
    import datasets
    import torch

GLUE_DIR_ENV = "THESEUS_GLUE_DIR"
HUB_DATASET = "nyu-mll/glue"
#: Columns that :func:`tokenize_split` produces and models consume.
MODEL_COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "labels")
_CACHE_FORMAT = "theseus-tokenized-v1"
STSB_SCORE_RANGE = (0.0, 5.0)
_WHERE_DATA = (f"point at a GLUE download with --glue-dir or {GLUE_DIR_ENV}, or leave "
               f"both unset to load {HUB_DATASET} from the Hugging Face Hub")


def resolve_glue_dir(glue_dir: str | Path | None) -> Path | None:
    """Choose the local GLUE folder: ``glue_dir``, else ``$THESEUS_GLUE_DIR``.

    Returns ``None`` when neither is set (empty strings count as unset),
    meaning "load from the Hugging Face Hub". The path is not checked here;
    :func:`read_tsv_split` reports a missing folder or file.
    """
    value = glue_dir if glue_dir not in (None, "") else os.environ.get(GLUE_DIR_ENV)
    return Path(value).expanduser() if value else None


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
                        f"(looked for {path}); {_WHERE_DATA}")
    if not path.is_file():
        raise DataError(f"no {task.name} {split} data: file {path} does not exist; {_WHERE_DATA}")
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
            for field, col in zip(task.text_fields, texts):
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
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = skip + e.start
        line = raw.count(b"\n", 0, offset) + 1
        raise DataError(f"{path}: line {line}, byte offset {offset}: byte 0x{raw[offset]:02x} is "
                        f"not valid UTF-8 ({e.reason}); GLUE files are UTF-8: re-save the file "
                        "as UTF-8 or restore it from the GLUE download") from None


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
                        f"{_WHERE_DATA}") from exc
    if max_samples is not None:
        ds = ds.select(range(min(max_samples, len(ds))))
    return ds


def _cache_key(ds: datasets.Dataset, tokenizer: Any, task: GlueTask, max_seq_length: int) -> str:
    """sha256 hex over dataset identity, tokenizer identity, task and length."""
    fingerprint = getattr(ds, "_fingerprint", None)
    if not fingerprint:
        fingerprint = hashlib.sha256(json.dumps(ds.to_dict(), sort_keys=True,
                                                default=str).encode()).hexdigest()
    parts = {
        "format": _CACHE_FORMAT,
        "dataset": fingerprint,
        "tokenizer": [getattr(tokenizer, "name_or_path", ""), getattr(tokenizer, "vocab_size", None),
                      len(tokenizer), type(tokenizer).__name__,
                      getattr(tokenizer, "init_kwargs", {}).get("do_lower_case")],
        "task": task.name,
        "max_seq_length": max_seq_length,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def tokenize_split(ds: datasets.Dataset, tokenizer: Any, task: GlueTask | str,
                   max_seq_length: int, cache_dir: Path | None = None) -> datasets.Dataset:
    """Tokenise a split for the model, without padding, with an on-disk cache.

    Text pairs are truncated (longest first) to ``max_seq_length`` tokens
    including special tokens; padding is left to the collator of
    :func:`make_dataloader`.

    Args:
        ds: output of :func:`load_split` (text fields and ``label`` columns).
        tokenizer: a Hugging Face tokenizer.
        max_seq_length: maximum tokens per example (>= 1).
        cache_dir: folder of cache entries, one sub-folder per key; default
            ``platformdirs.user_cache_dir("theseus")/tokenized``. The key is a
            sha256 over the dataset fingerprint, the tokenizer's name_or_path,
            vocab size and class, the task and ``max_seq_length``. Entries are
            written to a temporary folder and renamed into place, so a
            half-written entry is never read.

    Returns:
        A dataset of N rows with ``input_ids``, ``attention_mask``,
        ``token_type_ids`` (when the tokenizer makes them), all lists of ints
        of length <= ``max_seq_length``, and ``labels`` (int64; float32 for
        STS-B; -1 on test splits).

    Raises:
        ConfigError: ``max_seq_length`` < 1.
        DataError: ``ds`` lacks a text field or the ``label`` column.
    """
    import datasets
    import platformdirs

    task = get_task(task)
    if max_seq_length < 1:
        raise ConfigError(f"max_seq_length must be >= 1, got {max_seq_length}")
    missing = [c for c in (*task.text_fields, "label") if c not in ds.column_names]
    if missing:
        raise DataError(f"{task.name} dataset lacks column(s) {', '.join(missing)}; "
                        f"has {', '.join(ds.column_names)}")
    key = _cache_key(ds, tokenizer, task, max_seq_length)
    root = Path(cache_dir) if cache_dir is not None else (
        Path(platformdirs.user_cache_dir("theseus")) / "tokenized")
    target = root / key
    if target.is_dir():
        try:
            return datasets.load_from_disk(str(target))
        except Exception:  # unreadable entry: rebuild it below
            shutil.rmtree(target, ignore_errors=True)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(*(batch[f] for f in task.text_fields),
                        truncation=True, max_length=max_seq_length)
        out = {k: enc[k] for k in MODEL_COLUMNS[:3] if k in enc}
        out["labels"] = batch["label"]
        return out

    tokenized = ds.map(encode, batched=True, remove_columns=ds.column_names,
                       keep_in_memory=True, new_fingerprint=key,
                       desc=f"Tokenizing {task.name}")
    tokenized = tokenized.cast_column(
        "labels", datasets.Value("float32" if task.is_regression else "int64"))
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.tmp-{uuid.uuid4().hex}"
    try:
        tokenized.save_to_disk(str(tmp))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same entry first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(target))


def make_dataloader(ds: datasets.Dataset, tokenizer: Any, batch_size: int, shuffle: bool,
                    seed: int = 0) -> torch.utils.data.DataLoader:
    """Batches of a tokenised split, each padded to its own longest example.

    Only :data:`MODEL_COLUMNS` present in ``ds`` are kept. Each batch is a
    dict of tensors: ``input_ids``/``attention_mask``/``token_type_ids`` of
    shape (B, L_batch) int64 where L_batch is the longest example in that
    batch, and ``labels`` (B,) int64 or float32. With ``shuffle`` the order
    comes from a ``torch.Generator`` seeded with ``seed`` (same seed, same
    order).

    Raises:
        ConfigError: ``batch_size`` < 1.
    """
    import torch
    from transformers import DataCollatorWithPadding

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    ds = ds.select_columns([c for c in MODEL_COLUMNS if c in ds.column_names])
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       generator=generator,
                                       collate_fn=DataCollatorWithPadding(tokenizer))


def load_tokenized(config: Any, task: GlueTask | str, tokenizer: Any, split: str) -> datasets.Dataset:
    """A workspace's tokenised split: ``train``, ``dev`` (the task's first dev split:
    MNLI's matched one), or any split name of the task (``dev_mismatched``, ``test``).

    Applies the workspace's ``data`` settings (glue_dir, max_seq_length,
    max_train_samples / max_eval_samples).

    Args:
        config: a ``theseus_cli.config.WorkspaceConfig``.
    """
    task = get_task(task)
    if split == "dev":
        split = task.dev_splits[0]
    if split == "train":
        limit = config.data.max_train_samples
    else:  # test splits are never cut: a submission needs every row
        limit = None if task.is_test(split) else config.data.max_eval_samples
    ds = load_split(task, split, config.glue_dir(), max_samples=limit)
    return tokenize_split(ds, tokenizer, task, config.data.max_seq_length or task.max_seq_length)
