"""GLUE data: read the classic TSV files (or the Hub), tokenise, batch.

Modules: :mod:`.sources` (TSV / Hub splits), :mod:`.tokens` (tokenisation and its
cache), :mod:`.batching` (dataloaders, length grouping). Their public names are
re-exported here.

Pipeline: :func:`load_split` -> :func:`tokenize_split` -> :func:`make_dataloader`.
The TSV layout of every task comes from :mod:`theseus_cli.data.glue`; nothing here
is task-specific. ``datasets``, ``torch`` and ``transformers`` are imported
inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theseus_cli.data.glue import GlueTask

if TYPE_CHECKING:
    import datasets

from theseus_cli.data.batching import (  # noqa: F401 - re-exported
    MEGA_BATCH_FACTOR,
    LengthGroupedSampler,
    example_lengths,
    make_dataloader,
)
from theseus_cli.data.sources import (  # noqa: F401 - re-exported
    GLUE_DIR_ENV,
    HUB_DATASET,
    STSB_SCORE_RANGE,
    WHERE_DATA,
    load_split,
    read_tsv_split,
    resolve_glue_dir,
)
from theseus_cli.data.tokens import (  # noqa: F401 - re-exported
    CACHE_FORMAT,
    MODEL_COLUMNS,
    cache_key,
    tokenize_split,
    tokenizer_fingerprint,
)

#: seed of the permutation that picks the held-out rows (the same for every run)
HOLDOUT_SEED = 0


def load_tokenized(config: Any, task: GlueTask | str, tokenizer: Any, split: str) -> datasets.Dataset:
    """A workspace's tokenised split: ``train``, ``dev`` (the task's first dev split:
    MNLI's matched one), ``selection`` (what training stages select their best
    checkpoint on), or any split name of the task (``dev_mismatched``, ``test``).

    Applies the workspace's ``data`` settings (glue_dir, max_seq_length,
    max_train_samples / max_eval_samples, selection). With ``selection: holdout``
    a fixed ``holdout_fraction`` of the training rows (a permutation seeded with
    :data:`HOLDOUT_SEED`, the same for every seed and stage) is ``selection`` and
    is left out of ``train``; otherwise ``selection`` is ``dev``.

    Args:
        config: a ``theseus_cli.workspace.config.WorkspaceConfig``.
    """
    task = config.task_definition(task)
    holdout = getattr(config.data, "selection", "dev") == "holdout"
    if split == "selection" and not holdout:
        split = "dev"
    if split == "dev":
        split = task.dev_splits[0]
    if split in ("train", "selection"):
        ds = load_split(task, "train", config.glue_dir(), max_samples=config.data.max_train_samples)
        if holdout:
            ds = _holdout(ds, config.data.holdout_fraction, split == "selection")
    else:  # test splits are never cut: a submission needs every row
        limit = None if task.is_test(split) else config.data.max_eval_samples
        ds = load_split(task, split, config.glue_dir(), max_samples=limit)
    return tokenize_split(ds, tokenizer, task, config.data.max_seq_length or task.max_seq_length)


def _holdout(ds: datasets.Dataset, fraction: float, held_out: bool) -> datasets.Dataset:
    """The held-out rows of ``ds`` (``held_out``) or the others, in their file order."""
    import math
    import random

    order = list(range(len(ds)))
    random.Random(HOLDOUT_SEED).shuffle(order)
    size = max(1, math.ceil(fraction * len(ds)))
    rows = sorted(order[:size]) if held_out else sorted(order[size:])
    return ds.select(rows)
