"""A task of the user's own: data files, a kind, and the metrics of that kind.

Declared in ``theseus.yaml`` under ``tasks:`` (``theseus init --train ...`` writes it)::

    tasks:
      banking77:
        train: ../shared/data/banking77/train.csv
        test: ../shared/data/banking77/test.csv
        text_columns: [text]
        label_column: category

:class:`UserTaskSettings` validates a section; :class:`UserTask` is the task the
pipeline runs, with the same interface as a GLUE task (``name``, ``text_fields``,
``label_names``, ``metrics``, ``dev_splits``, ...), so every stage treats both alike.
Splits: ``train``; ``dev``, the validation file or, without one, a held-out,
stratified, seeded part of train (the same rows for every stage and seed); ``test``
when a test file is given (scored when it has labels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_cli.data import user_files as uf
from theseus_cli.errors import ConfigError, DataError
from theseus_cli.plugin import param
from theseus_cli.plugin import params as P

KINDS = ("auto", "sequence-classification", "regression")
#: seed of the held-out validation rows of a task without a validation file
HOLDOUT_SEED = 0
METRICS = {"sequence-classification": ("accuracy", "macro_f1"),
           "regression": ("pearson", "spearmanr", "mse")}
#: the metrics whose mean is a kind's ``score`` (what selects checkpoints)
SCORE_METRICS = {"sequence-classification": ("accuracy",),
                 "regression": ("pearson", "spearmanr")}


@dataclass
class UserTaskSettings:
    """One task of ``tasks:`` in theseus.yaml (paths relative to the workspace)."""

    train: str | None = param(None, "training file (CSV, TSV, JSON, JSON Lines, Parquet) or a "
                                    "save_to_disk directory")
    validation: str | None = param(None, "validation file; null: hold validation_split of train "
                                         "out")
    test: str | None = param(None, "test file; scored when it has labels")
    format: str | None = param(None, "data format; null: from the file extension",
                               choices=tuple(f for f in uf.FORMATS if f != "conll"))
    text_columns: list = param(["text"], "one or two text columns (two: a pair, as MRPC)")
    label_column: str = param("label", "the label column: class names or ids, or numbers "
                                       "(regression)")
    labels: list | None = param(None, "the class names in order; null: those of train, sorted")
    validation_split: float = param(0.1, "fraction of train held out for validation when no "
                                         "validation file is given (stratified, seeded)",
                                    min=0.01, max=0.5)
    kind: str = param("auto", "task kind; auto: regression for float labels, else "
                              "sequence-classification", choices=KINDS)
    max_seq_length: int = param(128, "maximum tokens per example when data.max_seq_length "
                                     "is null", min=8, max=8192)

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("train: a training file is needed")
        if not 1 <= len(self.text_columns) <= 2:
            raise ConfigError(f"text_columns: {self.text_columns}: one or two columns")


@dataclass(frozen=True, eq=False)
class UserTask:
    """A user's task, GLUE-task-shaped. ``root`` resolves relative paths."""

    name: str
    settings: UserTaskSettings
    root: Path

    # ------------------------------------------------------------ GLUE-task interface
    @property
    def text_fields(self) -> tuple[str, ...]:
        return tuple(self.settings.text_columns)

    @functools.cached_property
    def kind(self) -> str:
        """``sequence-classification`` or ``regression`` (``auto`` decided from train)."""
        if self.settings.kind != "auto":
            return self.settings.kind
        return "regression" if self._label_type() == "float" else "sequence-classification"

    @property
    def is_regression(self) -> bool:
        return self.kind == "regression"

    @functools.cached_property
    def label_names(self) -> tuple[str, ...]:
        """Class names in id order (``labels``, else train's sorted); () for regression."""
        if self.is_regression:
            return ()
        return tuple(uf.label_names(self._train()[self.settings.label_column],
                                    self.settings.labels))

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.kind]

    @property
    def score_metrics(self) -> tuple[str, ...]:
        return SCORE_METRICS[self.kind]

    @property
    def dev_splits(self) -> tuple[str, ...]:
        return ("dev",)

    @property
    def test_splits(self) -> tuple[str, ...]:
        return ("test",) if self.settings.test else ()

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *self.dev_splits, *self.test_splits)

    @property
    def max_seq_length(self) -> int:
        return self.settings.max_seq_length

    @property
    def folder(self) -> str:
        return self.name

    def is_test(self, split: str) -> bool:
        return split in self.test_splits

    def file_name(self, split: str) -> str:
        """The file of ``split`` (raises ConfigError for a split the task lacks)."""
        return str(self.path(split))

    # ------------------------------------------------------------------ the files
    def path(self, split: str) -> Path:
        """The file or directory of ``split`` (``dev`` without a validation file: train's).

        Raises:
            ConfigError: the task has no such split.
        """
        s = self.settings
        given = {"train": s.train, "dev": s.validation or s.train, "test": s.test}.get(split)
        if given is None:
            raise ConfigError(f"task {self.name} has no split {split!r}; its splits are "
                              f"{', '.join(self.splits)}")
        path = Path(given).expanduser()
        return path if path.is_absolute() else (self.root / path).resolve()

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one task object per workspace load
    def _read(self, split: str) -> Any:
        """The checked file of ``split``, read once per task object (preflight and the
        stage that follows share it)."""
        path = self.path(split)
        fmt = uf.detect_format(path, self.settings.format)
        if fmt == "conll":
            raise ConfigError(f"task {self.name}: {path} is a CoNLL token file; "
                              "token classification is not supported yet")
        ds = uf.read_saved(path, split) if fmt == "saved" else uf.read_table(path, fmt)
        labelled = split != "test" or self.settings.label_column in ds.column_names
        uf.check_columns(ds, path, [*self.text_fields,
                                    *([self.settings.label_column] if labelled else [])])
        uf.check_texts(ds, path, fmt, self.text_fields)
        return ds

    def _train(self) -> Any:
        return self._read("train")

    def _label_type(self) -> str:
        path = self.path("train")
        column = self.settings.label_column
        return uf.label_type(self._train()[column], path,
                             uf.detect_format(path, self.settings.format), column)

    def holdout(self) -> tuple[list[int], list[int]]:
        """``(train rows, validation rows)`` of the train file (0-based), when validation is
        held out of it: stratified by label (not for regression), seeded, the same for every
        stage and seed."""
        labels = self._train()[self.settings.label_column]
        return uf.holdout_rows(labels, self.settings.validation_split, HOLDOUT_SEED,
                               stratify=not self.is_regression)

    def load(self, split: str) -> Any:
        """Split ``split`` as a ``datasets.Dataset`` with ``idx`` (the row in its file,
        0-based), the text fields and ``label`` (class id, float score, or -1 for an
        unlabelled test row).

        Raises:
            DataError: a bad file, cell or label (file and line named).
            ConfigError: the task has no such split.
        """
        import datasets

        held_out = split == "dev" and not self.settings.validation
        ds = self._train() if split == "train" or held_out else self._read(split)
        idx = list(range(len(ds)))
        if (split == "train" and not self.settings.validation) or held_out:
            train_rows, dev_rows = self.holdout()
            idx = dev_rows if held_out else train_rows
            ds = ds.select(idx)
        column = self.settings.label_column
        path = self.path(split)
        if column in ds.column_names:
            values = ds[column]
            fmt = uf.detect_format(path, self.settings.format)
            uf.label_type(values, path, fmt, column)
            if self.is_regression:
                try:
                    labels = [float(v) for v in values]
                except (TypeError, ValueError):
                    raise DataError(f"{path}: the label column {column!r} of a regression "
                                    "task holds a value that is not a number") from None
            else:
                uf.check_known_labels(values, self.label_names, path, split)
                ids = {n: i for i, n in enumerate(self.label_names)}
                labels = [ids[str(v)] for v in values]
        elif split == "test":
            labels = [-1] * len(ds)
        else:
            raise DataError(f"{path}: no label column {column!r}")
        label = (datasets.Value("float32") if self.is_regression
                 else datasets.Value("int64"))
        features = datasets.Features({"idx": datasets.Value("int32"),
                                      **{f: datasets.Value("string") for f in self.text_fields},
                                      "label": label})
        return datasets.Dataset.from_dict(
            {"idx": idx, **{f: [str(v) for v in ds[f]] for f in self.text_fields},
             "label": labels}, features=features)

    def test_has_labels(self) -> bool:
        """Whether the test file carries the label column (so test can be scored)."""
        if not self.settings.test:
            return False
        return self.settings.label_column in self._read("test").column_names


def task_from_settings(name: str, raw: Any, root: Path, where: str) -> UserTask:
    """A :class:`UserTask` from its ``tasks.NAME`` section.

    Raises:
        ConfigError: a bad key or value (named with ``where``).
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with train (and test, text_columns, "
                          f"label_column), got {raw!r}")
    return UserTask(name, P.build(UserTaskSettings, raw, where), root)
