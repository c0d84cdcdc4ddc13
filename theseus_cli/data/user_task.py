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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theseus_cli.data import hub_files
from theseus_cli.data import labels as label_checks
from theseus_cli.data import user_files as uf
from theseus_cli.errors import ConfigError, DataError
from theseus_cli.plugin import param, registry
from theseus_cli.plugin import params as P

#: seed of the held-out validation rows of a task without a validation file
HOLDOUT_SEED = 0
TOKEN_KIND = "token-classification"


@dataclass
class UserTaskSettings:
    """One task of ``tasks:`` in theseus.yaml (paths relative to the workspace)."""

    train: str | None = param(None, "training file (CSV, TSV, JSON, JSON Lines, Parquet, "
                                    "CoNLL) or a save_to_disk directory")
    validation: str | None = param(None, "validation file; null: hold validation_split of train "
                                         "out")
    test: str | None = param(None, "test file; scored when it has labels")
    format: str | None = param(None, "data format; null: from the file extension",
                               choices=tuple(uf.FORMATS))
    text_columns: list = param(["text"], "one or two text columns (two: a pair, as MRPC)")
    tokens_column: str = param("tokens", "token classification: the column of word lists "
                                         "(CoNLL files: their tokens)")
    label_column: str = param("label", "the label column: class names or ids, numbers "
                                       "(regression), or tag lists (CoNLL files: their tags)")
    labels: list | None = param(None, "the class names in order; null: those of train, sorted")
    validation_split: float = param(0.1, "fraction of train held out for validation when no "
                                         "validation file is given (stratified, seeded)",
                                    min=0.01, max=0.5)
    kind: str = param("auto", "task kind (a theseus.task_kinds plugin); auto: "
                              "token-classification for CoNLL files or tag lists, regression "
                              "for float labels, else sequence-classification")
    max_seq_length: int = param(128, "maximum tokens per example when data.max_seq_length "
                                     "is null", min=8, max=8192)

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("train: a training file is needed")
        if not 1 <= len(self.text_columns) <= 2:
            raise ConfigError(f"text_columns: {self.text_columns}: one or two columns")
        if self.kind != "auto":
            registry.task_kind(self.kind)  # UnknownNameError lists the installed kinds


@dataclass(frozen=True, eq=False)
class UserTask:
    """A user's task, GLUE-task-shaped. ``root`` resolves relative paths."""

    name: str
    settings: UserTaskSettings
    root: Path
    #: warnings found while reading (repaired BIO tags), shown before the stage runs
    notes: list = field(default_factory=list, compare=False)

    # ------------------------------------------------------------ GLUE-task interface
    @property
    def text_fields(self) -> tuple[str, ...]:
        if self.kind_plugin.token_level:
            return (self.settings.tokens_column,)
        return tuple(self.settings.text_columns)

    @functools.cached_property
    def kind(self) -> str:
        """The kind's name (``auto`` decided from train: tag lists or a CoNLL file ->
        token-classification, float labels -> regression, else sequence-classification)."""
        if self.settings.kind != "auto":
            return self.settings.kind
        if self.format_of("train") == "conll":
            return TOKEN_KIND
        labels = self._train()[self.settings.label_column]
        if labels and isinstance(labels[0], (list, tuple)):
            return TOKEN_KIND
        return "regression" if self._label_type() == "float" else "sequence-classification"

    @functools.cached_property
    def kind_plugin(self) -> Any:
        """The :class:`~theseus_cli.plugin.TaskKind` of :attr:`kind`."""
        return registry.task_kind(self.kind)

    @property
    def is_regression(self) -> bool:
        return self.kind_plugin.regression

    @functools.cached_property
    def label_names(self) -> tuple[str, ...]:
        """Class or tag names in id order (``labels``, else the kind's order of train's);
        () for regression."""
        kind = self.kind_plugin
        if kind.regression:
            return ()
        train = self._train()[self.settings.label_column]
        if kind.token_level and label_checks.bio_tags({str(t) for row in train for t in row}):
            train, _ = label_checks.repair_bio(train)  # IOB1's I-X opening an entity is read as B-X
        names = tuple(kind.label_names(train, self.settings.labels))
        if not kind.token_level and len(names) < 2:
            only = f" {names[0]!r}" if names else ""
            raise DataError(f"{self.path('train')}: the label column "
                            f"{self.settings.label_column!r} has one class{only} in all "
                            f"{len(train)} rows; classification needs at least two classes "
                            "(for a score per row, use numbers and --kind regression)")
        return names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.kind_plugin.metric_names(self.label_names)[0])

    @property
    def score_metrics(self) -> tuple[str, ...]:
        return tuple(self.kind_plugin.metric_names(self.label_names)[1])

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
    def _given(self, split: str) -> tuple[str, str]:
        """``(setting value, Hub split it names by default)`` of ``split``.

        Raises:
            ConfigError: the task has no such split.
        """
        s = self.settings
        if split == "train" or (split == "dev" and not s.validation):
            return str(s.train), "train"
        if split == "dev":
            return str(s.validation), "validation"
        if split == "test" and s.test:
            return str(s.test), "test"
        raise ConfigError(f"task {self.name} has no split {split!r}; its splits are "
                          f"{', '.join(self.splits)}")

    def hub(self, split: str) -> tuple[str, str | None, str] | None:
        """``(dataset id, config, Hub split)`` when ``split`` comes from the Hub
        (``hub:ID[:CONFIG][@SPLIT]``), else None."""
        return hub_files.parse_hub(*self._given(split))

    def path(self, split: str) -> Path:
        """The file or directory of ``split`` (``dev`` without a validation file: train's);
        a Hub dataset's setting as written.

        Raises:
            ConfigError: the task has no such split.
        """
        given, _ = self._given(split)
        path = Path(given).expanduser()
        if given.startswith(hub_files.HUB_PREFIX) or path.is_absolute():
            return Path(given) if given.startswith(hub_files.HUB_PREFIX) else path
        return (self.root / path).resolve()

    def format_of(self, split: str) -> str:
        """``hub``, or the file format of ``split`` (``format``, else its extension)."""
        return "hub" if self.hub(split) else uf.detect_format(self.path(split),
                                                              self.settings.format)

    @functools.cache  # noqa: B019 - one task object per workspace load
    def _read(self, split: str) -> Any:
        """The checked file of ``split``, read once per task object (preflight and the
        stage that follows share it)."""
        path = self.path(split)
        fmt = self.format_of(split)
        if fmt == "conll":  # its columns take the names the settings give
            ds = uf.read_conll(path).rename_columns(
                {"tokens": self.settings.tokens_column, "tags": self.settings.label_column})
        elif fmt in ("hub", "saved"):  # ClassLabel ids become the names they stand for
            ds = hub_files.read_hub(*self.hub(split)) if fmt == "hub" else uf.read_saved(path, split)
            if self.settings.label_column in ds.column_names:
                ds = hub_files.class_labels_as_names(ds, self.settings.label_column,
                                                      f"{path} ({split})")
        else:
            ds = uf.read_table(path, fmt)
        labelled = split != "test" or self.settings.label_column in ds.column_names
        tagged = self._tagged(ds, fmt)
        texts = [self.settings.tokens_column] if tagged else list(self.settings.text_columns)
        uf.check_columns(ds, path, [*texts, *([self.settings.label_column] if labelled else [])])
        if tagged:
            uf.check_tagged(ds, path, fmt, self.settings.tokens_column,
                            self.settings.label_column if labelled else None)
        else:
            uf.check_texts(ds, path, fmt, texts)
        return ds

    def _tagged(self, ds: Any, fmt: str) -> bool:
        """Whether the rows of ``ds`` are word lists with a tag list each (a token-level
        kind): a CoNLL file, a token-level ``kind``, list-valued labels, or (an unlabelled
        test file) the tokens column present and no text column."""
        s = self.settings
        if fmt == "conll":
            return True
        if s.kind != "auto":
            return registry.task_kind(s.kind).token_level
        if s.label_column in ds.column_names and len(ds):
            return isinstance(ds[0][s.label_column], (list, tuple))
        return s.tokens_column in ds.column_names and not any(
            c in ds.column_names for c in s.text_columns)

    def _train(self) -> Any:
        return self._read("train")

    def _label_type(self) -> str:
        column = self.settings.label_column
        return label_checks.label_type(self._train()[column], self.path("train"),
                             self.format_of("train"), column)

    def holdout(self) -> tuple[list[int], list[int]]:
        """``(train rows, validation rows)`` of the train file (0-based), when validation is
        held out of it: stratified by label (not for regression), seeded, the same for every
        stage and seed."""
        labels = self._train()[self.settings.label_column]
        kind = self.kind_plugin
        return uf.holdout_rows(labels, self.settings.validation_split, HOLDOUT_SEED,
                               stratify=not (kind.regression or kind.token_level))

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
        kind = self.kind_plugin
        if column in ds.column_names and kind.token_level:
            ids = {n: i for i, n in enumerate(self.label_names)}
            tags = ds[column]
            if label_checks.bio_tags(self.label_names):
                tags, repaired = label_checks.repair_bio(tags)
                if repaired:
                    self.notes.append(
                        f"{path}: {repaired} tag(s) of the {split} split start an entity with "
                        "I- (not valid BIO); read as B-, the way seqeval and conlleval read "
                        "them")
            label_checks.check_known_labels([t for row in tags for t in row], self.label_names, path,
                                  split)
            labels = [[ids[str(t)] for t in row] for row in tags]
        elif column in ds.column_names:
            values = ds[column]
            label_checks.label_type(values, path, self.format_of(split), column)
            if self.is_regression:
                labels = label_checks.float_labels(values, path, self.format_of(split), column)
            else:
                label_checks.check_known_labels(values, self.label_names, path, split)
                ids = {n: i for i, n in enumerate(self.label_names)}
                labels = [ids[str(v)] for v in values]
        elif split == "test":
            labels = ([[-100] * len(words) for words in ds[self.text_fields[0]]]
                      if kind.token_level else [-1] * len(ds))
        else:
            raise DataError(f"{path}: no label column {column!r}")
        if kind.token_level:
            texts = {f: [[str(w) for w in words] for words in ds[f]] for f in self.text_fields}
            text_feature: Any = datasets.Sequence(datasets.Value("string"))
            label: Any = datasets.Sequence(datasets.Value("int64"))
        else:
            texts = {f: [str(v) for v in ds[f]] for f in self.text_fields}
            text_feature = datasets.Value("string")
            label = datasets.Value("float32" if self.is_regression else "int64")
        features = datasets.Features({"idx": datasets.Value("int32"),
                                      **{f: text_feature for f in self.text_fields},
                                      "label": label})
        return datasets.Dataset.from_dict({"idx": idx, **texts, "label": labels},
                                          features=features)

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
