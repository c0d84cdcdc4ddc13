"""The user's own data files: the readers behind a task declared in ``theseus.yaml``.

Formats (:data:`FORMATS`), by file extension or named: CSV, TSV, JSON, JSON Lines and
Parquet through ``datasets``' packaged builders; CoNLL-style token files (``TOKEN<TAB>TAG``
or space-separated, a blank or whitespace-only line between sentences, ``-DOCSTART-``
lines skipped); a directory written by ``datasets.save_to_disk``. Every reader returns a
``datasets.Dataset`` and checks what it read: the columns named exist (the message lists
the columns present), no text cell is missing or empty, no label is missing, the labels
are of one type; a bad file is a :class:`~theseus_cli.errors.DataError` naming the file,
the line or row, and the fix.

Rows are numbered as a user sees them in the file: the data row ``r`` (1-based) of a
CSV is on line ``r + 1`` (after the header); a CoNLL sentence is named by the line its
first token is on.
"""

from __future__ import annotations

import codecs
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from theseus_cli.errors import DataError

#: format name -> the file extensions that select it
FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",), "tsv": (".tsv", ".tab"), "json": (".json",),
    "jsonl": (".jsonl", ".ndjson"), "parquet": (".parquet", ".pq"),
    "conll": (".conll", ".conllu", ".bio", ".iob", ".iob2", ".txt"),
    "saved": (),  # a directory written by datasets' save_to_disk
}
#: the ``datasets`` packaged builder (and its options) of each tabular format
_BUILDERS = {"csv": ("csv", {}), "tsv": ("csv", {"sep": "\t"}), "json": ("json", {}),
             "jsonl": ("json", {}), "parquet": ("parquet", {})}
DOCSTART = "-DOCSTART-"


def detect_format(path: Path, given: str | None = None) -> str:
    """The format of ``path``: ``given`` if set, ``saved`` for a directory, else by extension.

    Raises:
        DataError: an unknown ``given`` name or extension (lists the accepted ones).
    """
    accepted = ", ".join(FORMATS)
    if given:
        if given not in FORMATS:
            raise DataError(f"--format {given}: unknown data format; accepted: {accepted}")
        return given
    if path.is_dir():
        return "saved"
    for name, extensions in FORMATS.items():
        if path.suffix.lower() in extensions:
            return name
    raise DataError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                    f"name it with --format ({accepted})")


def decode_utf8(path: Path) -> str:
    """The text of ``path`` (UTF-8, optional BOM).

    Raises:
        DataError: the file is missing or empty, or holds a byte that is not UTF-8 (names
            the line and the byte offset).
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file; check the path given to theseus init")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty ({len(raw)} bytes)")
    return utf8_text(path, raw, "re-save the file as UTF-8")


def utf8_text(path: Path, raw: bytes, fix: str) -> str:
    """``raw`` (the bytes of ``path``) as text: UTF-8 after an optional BOM.

    Raises:
        DataError: a byte that is not UTF-8, named by line and byte offset, then ``fix``.
    """
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = skip + e.start
        line = raw.count(b"\n", 0, offset) + 1
        raise DataError(f"{path}: line {line}, byte offset {offset}: byte 0x{raw[offset]:02x} "
                        f"is not valid UTF-8 ({e.reason}); {fix}") from None


def read_conll(path: Path) -> Any:
    """Sentences of a CoNLL-style file: a ``datasets.Dataset`` with ``tokens`` and ``tags``
    (lists of strings) and ``line`` (the line of each sentence's first token).

    The last column of a line is the tag, the first the token (tab- or space-separated);
    a blank or whitespace-only line ends a sentence; ``-DOCSTART-`` lines are skipped.

    Raises:
        DataError: a line with a token and no tag (line named), or no sentence at all.
    """
    import datasets

    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    starts: list[int] = []
    words: list[str] = []
    labels: list[str] = []
    for number, line in enumerate(decode_utf8(path).splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == DOCSTART:
            if words:
                tokens.append(words)
                tags.append(labels)
                words, labels = [], []
            continue
        if len(fields) < 2:
            raise DataError(f"{path}: line {number}: token {fields[0]!r} has no tag; every "
                            "line is TOKEN<TAB>TAG, a blank line between sentences")
        if not words:
            starts.append(number)
        words.append(fields[0])
        labels.append(fields[-1])
    if words:
        tokens.append(words)
        tags.append(labels)
    if not tokens:
        raise DataError(f"{path}: no sentence found (TOKEN<TAB>TAG lines, a blank line "
                        "between sentences)")
    return datasets.Dataset.from_dict({"tokens": tokens, "tags": tags, "line": starts})


def read_table(path: Path, fmt: str) -> Any:
    """A CSV, TSV, JSON, JSON Lines or Parquet file as a ``datasets.Dataset`` (through
    ``datasets``' packaged builders).

    Raises:
        DataError: missing or empty file, non-UTF-8 text, or a file the builder cannot
            parse (its first error line named).
    """
    import datasets

    if fmt != "parquet":
        text = decode_utf8(path)  # names a bad byte by line and offset, before the parser
        if fmt in ("csv", "tsv") and len([ln for ln in text.splitlines() if ln.strip()]) < 2:
            raise DataError(f"{path}: the file has no rows (only a header line)")
        check_delimited(text, path, fmt)
        if fmt == "jsonl":
            check_json_lines(text, path)
    elif not path.is_file():
        raise DataError(f"{path}: no such file; check the path given to theseus init")
    builder, options = _BUILDERS[fmt]
    try:
        ds = datasets.load_dataset(builder, data_files={"split": str(path)}, split="split",
                                   **options)
    except Exception as e:  # noqa: BLE001 - pandas, pyarrow and datasets raise many types
        first = (str(e).splitlines() or [""])[0]
        raise DataError(f"{path}: cannot be read as {fmt.upper()}: {type(e).__name__}: "
                        f"{first}") from None
    if len(ds) == 0:
        raise DataError(f"{path}: the file has no rows (only a header line)")
    return ds


def check_delimited(text: str, path: Path, fmt: str) -> None:
    """A file read as TSV has a tab in its header line, as CSV a comma, unless it has one
    column and no sign of the other delimiter.

    Raises:
        DataError: naming ``--format`` and the format the header suggests.
    """
    if fmt not in ("csv", "tsv"):
        return
    header = next((ln for ln in text.splitlines() if ln.strip()), "")
    own, other, other_fmt = ("\t", ",", "csv") if fmt == "tsv" else (",", "\t", "tsv")
    if own not in header and other in header:
        raise DataError(f"{path}: read as {fmt.upper()} (--format {fmt} or the file's "
                        f"extension), but its header line has no "
                        f"{'tab' if own == chr(9) else 'comma'} and a "
                        f"{'comma' if other == ',' else 'tab'}: {header[:60]!r}; is it "
                        f"{other_fmt.upper()}? Set --format {other_fmt} (format: in "
                        "theseus.yaml)")


def check_json_lines(text: str, path: Path) -> None:
    """Every non-blank line of a JSON Lines file is one JSON object.

    Raises:
        DataError: naming the first bad line and the parser's complaint.
    """
    import json

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as e:
            raise DataError(f"{path}: line {number} is not valid JSON ({e.msg} at column "
                            f"{e.colno}): {line[:60]!r}; JSON Lines needs one object per "
                            "line") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}: line {number} is a JSON {type(value).__name__}, not an "
                            "object; JSON Lines needs one object per line")


def read_saved(path: Path, split: str) -> Any:
    """Split ``split`` of a directory written by ``save_to_disk`` (a ``Dataset`` or a
    ``DatasetDict``).

    Raises:
        DataError: not such a directory, or it has no split of that name (lists them).
    """
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as e:  # noqa: BLE001
        raise DataError(f"{path}: not a directory written by save_to_disk "
                        f"({type(e).__name__}: {(str(e).splitlines() or [''])[0]})") from None
    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DataError(f"{path}: no split {split!r}; the splits are "
                            f"{', '.join(saved)}")
        return saved[split]
    return saved


def check_columns(ds: Any, path: Path, needed: Sequence[str]) -> None:
    """Every column in ``needed`` exists.

    Raises:
        DataError: naming the missing column and listing the columns present.
    """
    for column in needed:
        if column not in ds.column_names:
            raise DataError(f"{path}: no column {column!r}; the columns are "
                            f"{', '.join(ds.column_names)} (set --text-column / "
                            "--label-column / --tokens-column)")


def row_name(path: Path, fmt: str, index: int) -> str:
    """Where data row ``index`` (0-based) is, as a user finds it in the file."""
    if fmt in ("csv", "tsv"):
        return f"line {index + 2}"  # the header is line 1
    if fmt == "jsonl":
        return f"line {index + 1}"
    return f"row {index + 1}"


def check_texts(ds: Any, path: Path, fmt: str, columns: Sequence[str]) -> None:
    """No text cell is missing or blank.

    Raises:
        DataError: naming the column, the line or row, and how many such cells there are.
    """
    for column in columns:
        bad = [i for i, v in enumerate(ds[column])
               if v is None or (isinstance(v, str) and not v.strip())
               or (isinstance(v, float) and math.isnan(v))]
        if bad:
            raise DataError(f"{path}: {row_name(path, fmt, bad[0])}: the text column {column!r} is "
                            f"empty ({len(bad)} such row(s)); fill or drop those rows")


def holdout_rows(labels: Sequence[Any], fraction: float, seed: int,
                 stratify: bool = True) -> tuple[list[int], list[int]]:
    """Split row ids into ``(train, validation)``: ``fraction`` of each class held out
    (stratified; at least 1 row of a class with 2 or more; ``stratify=False``, for
    regression: ``fraction`` of all rows), chosen by ``seed``, both lists in file order.
    The same labels, fraction and seed give the same rows on any machine.

    Raises:
        DataError: ``fraction`` outside (0, 1), or nothing left to train on.
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--validation-split {fraction}: a fraction in (0, 1) is needed")
    by_class: dict[str, list[int]] = {}
    for i, v in enumerate(labels):
        by_class.setdefault(repr(v) if stratify else "", []).append(i)
    rng = random.Random(seed)
    held: list[int] = []
    for key in sorted(by_class):
        rows = by_class[key]
        take = round(fraction * len(rows)) if len(rows) > 1 else 0
        take = max(1, take) if len(rows) > 1 else 0
        held += rng.sample(rows, take)
    held_set = set(held)
    train = [i for i in range(len(labels)) if i not in held_set]
    if not train or not held:
        raise DataError(f"--validation-split {fraction}: {len(labels)} training rows leave "
                        f"{len(train)} to train on and {len(held)} to validate on; give a "
                        "validation file or more training rows")
    return train, sorted(held)


def check_tagged(ds: Any, path: Path, fmt: str, tokens: str, tags: str | None) -> None:
    """Every row holds a non-empty list of non-empty words and, when ``tags`` is given, a
    list of as many tags.

    Raises:
        DataError: naming the row (a CoNLL file: the line of its first token) and the fix.
    """
    lines = ds["line"] if fmt == "conll" and "line" in ds.column_names else None

    def where(i: int) -> str:
        return f"line {lines[i]}" if lines else row_name(path, fmt, i)

    for i, words in enumerate(ds[tokens]):
        if not isinstance(words, (list, tuple)) or not words or any(
                w is None or not str(w).strip() for w in words):
            raise DataError(f"{path}: {where(i)}: the tokens column {tokens!r} must hold a "
                            f"non-empty list of words, got {words!r}")
        if tags is None:
            continue
        row = ds[i][tags]
        if not isinstance(row, (list, tuple)) or len(row) != len(words):
            got = len(row) if isinstance(row, (list, tuple)) else type(row).__name__
            raise DataError(f"{path}: {where(i)}: {len(words)} words but {got} tags in "
                            f"{tags!r}; every word needs one tag")
        if any(t is None or str(t).strip() == "" for t in row):
            raise DataError(f"{path}: {where(i)}: an empty tag in {tags!r}; every word needs "
                            "a tag")
