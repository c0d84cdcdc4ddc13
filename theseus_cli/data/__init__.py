"""GLUE data: read the classic TSV files (or the Hub), tokenise, batch.

Modules: :mod:`.sources` (TSV / Hub splits), :mod:`.tokens` (tokenisation and its
cache), :mod:`.batching` (dataloaders, length grouping). Their public names are
re-exported here.

Pipeline: :func:`load_split` -> :func:`tokenize_split` -> :func:`make_dataloader`.
The TSV layout of every task comes from :mod:`theseus_cli.glue`; nothing here
is task-specific. ``datasets``, ``torch`` and ``transformers`` are imported
inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theseus_cli.glue import GlueTask, get_task

if TYPE_CHECKING:
    import datasets

from theseus_cli.data.batching import (  # noqa: F401 - re-exported
    MEGA_BATCH_FACTOR,
    LengthGroupedSampler,
    example_lengths,
    make_dataloader,
)
from theseus_cli.data.sources import (  # noqa: F401 - re-exported
    _WHERE_DATA,
    GLUE_DIR_ENV,
    HUB_DATASET,
    STSB_SCORE_RANGE,
    load_split,
    read_tsv_split,
    resolve_glue_dir,
)
from theseus_cli.data.tokens import (  # noqa: F401 - re-exported
    _CACHE_FORMAT,
    MODEL_COLUMNS,
    _cache_key,
    tokenize_split,
    tokenizer_fingerprint,
)


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
