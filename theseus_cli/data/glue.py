"""The GLUE tasks, as one table.

Every fact theseus needs about a GLUE task lives in its :class:`GlueTask`
row of :data:`TASKS`: the Hugging Face Hub config (``nyu-mll/glue``), the text
columns, the label names and order, the metrics GLUE reports, the split files
and the TSV layout of the classic GLUE download (``<glue_dir>/<Task>/<split>.tsv``).
The readers in :mod:`theseus_cli.data` are driven only by this table.

This module is cheap to import (standard library only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from theseus_cli.errors import UnknownNameError

#: A TSV column, by 0-based position (negative counts from the end) or by
#: header name (only for files that have a header line).
Column = int | str


@dataclass(frozen=True)
class TsvLayout:
    """Where the fields are in one GLUE TSV file.

    Attributes:
        header: whether the first line is a header (never a data row).
        text_columns: one column per entry of ``GlueTask.text_fields``, same order.
        label_column: column of the gold label; ``None`` for unlabelled test files.
        index_column: column holding the row id GLUE submissions use; ``None``
            when the file has none (the 0-based row number is used instead).
        num_columns: expected columns per row for files without a header; files
            with a header must have as many columns as the header on every row.
    """

    header: bool
    text_columns: tuple[Column, ...]
    label_column: Column | None = None
    index_column: Column | None = None
    num_columns: int | None = None


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task (a row of :data:`TASKS`).

    Attributes:
        name: the GLUE spelling (``"SST-2"``), also the folder in a GLUE dir.
        hub_config: config name of the ``nyu-mll/glue`` Hub dataset.
        text_fields: Hub column names of the one or two input texts.
        label_names: class names in Hub/GLUE class-id order; ``()`` for STS-B.
        metrics: metric names as GLUE reports them (see ``theseus_cli.data.metrics``).
        dev_files / test_files: split name -> file name inside ``data_dir``.
            ``train`` is ``train.tsv`` for every task that has training data.
        label_tokens: how each class is spelled in the TSV label column, in
            ``label_names`` order (``("0", "1")`` or the names themselves).
        labelled / test_layout: TSV layout of train+dev files and of test files.
        data_dir: folder inside the GLUE dir (defaults to ``name``).
        has_train: False for the diagnostic set (AX), which is test-only.
        max_seq_length: the paper's maximum sequence length (section 4.3: 256 for
            QNLI, 128 for the others), used when the workspace sets none.
        submission_files: test split -> file name the GLUE server expects
            (default ``<name>.tsv``; MNLI-m.tsv / MNLI-mm.tsv for MNLI).
    """

    name: str
    hub_config: str
    text_fields: tuple[str, ...]
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    label_tokens: tuple[str, ...]
    labelled: TsvLayout | None
    test_layout: TsvLayout
    dev_files: dict[str, str] = field(default_factory=lambda: {"dev": "dev.tsv"}, hash=False)
    test_files: dict[str, str] = field(default_factory=lambda: {"test": "test.tsv"}, hash=False)
    data_dir: str = ""
    has_train: bool = True
    max_seq_length: int = 128
    submission_files: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def is_regression(self) -> bool:
        """True for STS-B (a similarity score in [0, 5], not a class)."""
        return not self.label_names

    @property
    def kind(self) -> str:
        """The task kind (a ``theseus.task_kinds`` plugin name)."""
        return "regression" if self.is_regression else "sequence-classification"

    @property
    def num_labels(self) -> int:
        """Output units of the classifier head: classes, or 1 for regression."""
        return len(self.label_names) or 1

    @property
    def folder(self) -> str:
        """Folder of this task's files inside a GLUE dir."""
        return self.data_dir or self.name

    @property
    def dev_splits(self) -> tuple[str, ...]:
        """Dev split names, e.g. ``("dev",)`` or MNLI's matched/mismatched pair."""
        return tuple(self.dev_files)

    @property
    def test_splits(self) -> tuple[str, ...]:
        """Test split names, e.g. ``("test",)``."""
        return tuple(self.test_files)

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split: ``train`` (if any), then dev splits, then test splits."""
        train = ("train",) if self.has_train else ()
        return train + self.dev_splits + self.test_splits

    def submission_file(self, split: str) -> str:
        """Leaderboard file name of a test split, e.g. ``"MNLI-mm.tsv"``.

        Raises:
            UnknownNameError: ``split`` is not a test split of this task.
        """
        if split not in self.test_files:
            raise UnknownNameError(f"test split of {self.name}", split, self.test_files)
        return self.submission_files.get(split, f"{self.name}.tsv")

    def is_test(self, split: str) -> bool:
        """Whether ``split`` is an unlabelled test split of this task."""
        return split in self.test_files

    def file_name(self, split: str) -> str:
        """File name of ``split`` inside :attr:`folder`.

        Raises:
            UnknownNameError: ``split`` is not a split of this task.
        """
        if split == "train" and self.has_train:
            return "train.tsv"
        files = {**self.dev_files, **self.test_files}
        if split not in files:
            raise UnknownNameError(f"split of {self.name}", split, self.splits)
        return files[split]

    def tsv_path(self, glue_dir: str | Path, split: str) -> Path:
        """Path of ``split``'s TSV under ``glue_dir`` (not checked for existence).

        Raises:
            UnknownNameError: ``split`` is not a split of this task.
        """
        return Path(glue_dir) / self.folder / self.file_name(split)

    def layout(self, split: str) -> TsvLayout:
        """TSV layout of ``split`` (train/dev share one, test has its own).

        Raises:
            UnknownNameError: ``split`` is not a split of this task.
        """
        self.file_name(split)  # validates the split name
        if self.is_test(split):
            return self.test_layout
        assert self.labelled is not None
        return self.labelled

    def hub_split(self, split: str) -> str:
        """Hub split name: ``dev`` -> ``validation``, ``dev_matched`` ->
        ``validation_matched``; others unchanged.

        Raises:
            UnknownNameError: ``split`` is not a split of this task.
        """
        self.file_name(split)
        return "validation" + split[3:] if split.startswith("dev") else split


def _hdr(*text: str, label: str | None = None, index: str | None = "index") -> TsvLayout:
    """Layout of a file with a header line, columns named by header."""
    return TsvLayout(header=True, text_columns=text, label_column=label, index_column=index)


_PAIR = ("sentence1", "sentence2")
_NLI = ("entailment", "neutral", "contradiction")
_NOT_ENT = ("entailment", "not_entailment")
_MRPC_TEXT = ("#1 String", "#2 String")

_TABLE = (
    GlueTask("CoLA", "cola", ("sentence",), ("unacceptable", "acceptable"),
             ("matthews_correlation",), ("0", "1"),
             # train/dev: no header; source, label, original star, sentence
             TsvLayout(header=False, text_columns=(3,), label_column=1, num_columns=4),
             _hdr("sentence")),
    GlueTask("SST-2", "sst2", ("sentence",), ("negative", "positive"),
             ("accuracy",), ("0", "1"),
             _hdr("sentence", label="label", index=None), _hdr("sentence")),
    GlueTask("MRPC", "mrpc", _PAIR, ("not_equivalent", "equivalent"),
             ("f1", "accuracy"), ("0", "1"),
             _hdr(*_MRPC_TEXT, label="Quality", index=None), _hdr(*_MRPC_TEXT)),
    GlueTask("STS-B", "stsb", _PAIR, (), ("pearson", "spearmanr"), (),
             _hdr(*_PAIR, label="score"), _hdr(*_PAIR)),
    GlueTask("QQP", "qqp", ("question1", "question2"), ("not_duplicate", "duplicate"),
             ("f1", "accuracy"), ("0", "1"),
             _hdr("question1", "question2", label="is_duplicate", index="id"),
             _hdr("question1", "question2", index="id")),
    GlueTask("MNLI", "mnli", ("premise", "hypothesis"), _NLI, ("accuracy",), _NLI,
             _hdr(*_PAIR, label="gold_label"), _hdr(*_PAIR),
             dev_files={"dev_matched": "dev_matched.tsv",
                        "dev_mismatched": "dev_mismatched.tsv"},
             test_files={"test_matched": "test_matched.tsv",
                         "test_mismatched": "test_mismatched.tsv"},
             submission_files={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}),
    GlueTask("QNLI", "qnli", ("question", "sentence"), _NOT_ENT, ("accuracy",), _NOT_ENT,
             _hdr("question", "sentence", label="label"), _hdr("question", "sentence"),
             max_seq_length=256),
    GlueTask("RTE", "rte", _PAIR, _NOT_ENT, ("accuracy",), _NOT_ENT,
             _hdr(*_PAIR, label="label"), _hdr(*_PAIR)),
    GlueTask("WNLI", "wnli", _PAIR, ("not_entailment", "entailment"),
             ("accuracy",), ("0", "1"),
             _hdr(*_PAIR, label="label"), _hdr(*_PAIR)),
    # Diagnostic set: test-only, predicted with an MNLI model.
    GlueTask("AX", "ax", ("premise", "hypothesis"), _NLI, ("matthews_correlation",), _NLI,
             None, _hdr(*_PAIR), dev_files={}, test_files={"test": "diagnostic.tsv"},
             data_dir="diagnostic", has_train=False),
)

#: Every GLUE task by its GLUE name.
TASKS: dict[str, GlueTask] = {t.name: t for t in _TABLE}

#: The 8 tasks averaged into the paper's macro score (WNLI left out, section 4.1).
PAPER_TASKS: tuple[str, ...] = ("CoLA", "MNLI", "MRPC", "QNLI", "QQP", "RTE", "SST-2", "STS-B")

#: Tasks a model is trained for (AX is predicted with the MNLI model), in GLUE's order.
TRAINABLE_TASKS: tuple[str, ...] = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI",
                                    "RTE", "WNLI")

#: Test-set task whose predictions come from another task's model.
PREDICTED_WITH: dict[str, str] = {"AX": "MNLI"}


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_ALIASES: dict[str, str] = {
    **{_norm(t.name): t.name for t in _TABLE},
    **{_norm(t.hub_config): t.name for t in _TABLE},
    "diagnostic": "AX",
}


def get_task(name: str | GlueTask) -> GlueTask:
    """Look a task up by GLUE name or alias (case, ``-`` and ``_`` ignored).

    ``"SST-2"``, ``"sst2"``, ``"sst-2"`` and ``"STS_B"`` all work; a
    task object (a :class:`GlueTask`, or a user's task resolved by the workspace) is
    returned unchanged.

    Raises:
        UnknownNameError: no such task (the message lists the GLUE names).
    """
    if not isinstance(name, str):
        return name
    key = _ALIASES.get(_norm(str(name)))
    if key is None:
        raise UnknownNameError("task", str(name), TASKS)
    return TASKS[key]


__all__ = ["Column", "GlueTask", "PAPER_TASKS", "PREDICTED_WITH", "TASKS", "TRAINABLE_TASKS",
           "TsvLayout", "get_task"]
