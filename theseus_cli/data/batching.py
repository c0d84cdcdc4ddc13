"""Batches: padding to each batch's longest example, optionally grouped by length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theseus_cli.errors import ConfigError, DataError

if TYPE_CHECKING:
    import datasets
    import torch

from theseus_cli.data.tokens import MODEL_COLUMNS

#: Examples per mega-batch, in batches (transformers' LengthGroupedSampler uses 50).
MEGA_BATCH_FACTOR = 50


def example_lengths(ds: datasets.Dataset) -> list[int]:
    """Tokens per example: the length of each row's ``input_ids`` list.

    One vectorised Arrow call (no Python loop over rows); respects ``select``.

    Returns:
        N ints (tokens, special tokens included), in row order.

    Raises:
        DataError: ``ds`` has no ``input_ids`` column (not tokenised).
    """
    import pyarrow.compute as pc

    if "input_ids" not in ds.column_names:
        raise DataError(f"cannot group by length: the dataset has no input_ids column "
                        f"(columns: {', '.join(ds.column_names)}); tokenise it first")
    table = ds.select_columns(["input_ids"]).with_format("arrow")[:]
    return pc.list_value_length(table["input_ids"]).to_pylist()


class LengthGroupedSampler:
    """A ``torch.utils.data.Sampler`` of indices whose batches hold similar lengths.

    Each pass (epoch) draws a random permutation of the N indices from
    ``generator``, cuts it into mega-batches of ``batch_size * mega_batch_factor``
    indices (the last may be shorter), sorts each by length, longest first
    (ties keep their random order), and yields the concatenation. The batches a
    ``BatchSampler`` cuts from it hold examples of similar length and pad
    little; the pass still holds every index once, like shuffling. Mega-batches
    stay in random order; ``longest_first`` moves the longest example to the
    front instead (as transformers, to hit out-of-memory errors at once).

    All randomness comes from ``generator`` at the start of a pass (as with
    ``RandomSampler``): reseeding it replays the order, so (seed, epoch) fixes
    the batches, also when a resume skips the first ones. Duck-typed
    (``__iter__``, ``__len__``, ``generator``) so that importing this module
    needs no torch; Accelerate shards its batches across processes and syncs
    ``generator`` as it does a ``RandomSampler``'s.

    Args:
        lengths: N tokens counts, one per example (:func:`example_lengths`).
        batch_size: examples per batch (>= 1).
        generator: the ``torch.Generator`` to draw from (the DataLoader's).
        mega_batch_factor: batches per mega-batch (>= 1); larger groups more
            tightly and shuffles less.
    """

    def __init__(self, lengths: list[int], batch_size: int, generator: torch.Generator,
                 mega_batch_factor: int = MEGA_BATCH_FACTOR, longest_first: bool = False):
        import torch

        if batch_size < 1 or mega_batch_factor < 1:
            raise ConfigError(f"batch_size ({batch_size}) and mega_batch_factor "
                              f"({mega_batch_factor}) must be >= 1")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.int64)  # (N,) tokens
        self.batch_size, self.mega_batch_factor = batch_size, mega_batch_factor
        self.generator, self.longest_first = generator, longest_first

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Any:
        yield from self.order().tolist()

    def order(self) -> torch.Tensor:
        """Draw one pass's order: int64 tensor (N,), a permutation of 0 .. N-1."""
        import torch

        perm = torch.randperm(len(self.lengths), generator=self.generator)  # (N,)
        mega = [m[torch.sort(self.lengths[m], descending=True, stable=True).indices]
                for m in perm.split(self.batch_size * self.mega_batch_factor)]
        if self.longest_first and mega:
            top = max(range(len(mega)), key=lambda i: int(self.lengths[mega[i][0]]))
            mega[0][0], mega[top][0] = mega[top][0].clone(), mega[0][0].clone()
        return torch.cat(mega) if mega else perm


class TokenLevelCollator:
    """Pads a batch of a token-level kind: the inputs as ``DataCollatorWithPadding`` does,
    ``labels`` with -100 and ``teacher_logits`` (L_i, C) with zeros to the batch's length,
    on the tokenizer's padding side.

    Returns (per batch): ``input_ids``/``attention_mask`` (B, L) int64, ``labels`` (B, L)
    int64, ``teacher_logits`` (B, L, C) float32 when present.
    """

    def __init__(self, tokenizer: Any):
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)
        self.left = getattr(tokenizer, "padding_side", "right") == "left"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        features = [dict(f) for f in features]
        labels = [list(f.pop("labels")) for f in features]
        teacher = ([f.pop("teacher_logits") for f in features]
                   if "teacher_logits" in features[0] else None)
        batch = self.pad(features)
        length = batch["input_ids"].shape[1]  # L: the batch's longest example
        out = torch.full((len(labels), length), -100, dtype=torch.int64)  # (B, L)
        for i, row in enumerate(labels):
            if row:
                (out[i, length - len(row):] if self.left else out[i, :len(row)]).copy_(
                    torch.as_tensor(row, dtype=torch.int64))
        batch["labels"] = out
        if teacher is not None:
            rows = [torch.as_tensor(t, dtype=torch.float32) for t in teacher]  # each (L_i, C)
            logits = torch.zeros(len(rows), length, rows[0].shape[-1])  # (B, L, C)
            for i, row in enumerate(rows):
                (logits[i, length - len(row):] if self.left else logits[i, :len(row)]).copy_(row)
            batch["teacher_logits"] = logits
        return batch


def concat_padded(arrays: list[Any], fill: float) -> Any:
    """Concatenate NumPy batches along axis 0. Token-level batches (B_i, L_i, ...) of
    different lengths L_i are first padded on the right of axis 1 to the longest, with
    ``fill`` (logits: 0; labels: -100, which no metric counts)."""
    import numpy as np

    if not arrays:
        return np.zeros((0,))
    if arrays[0].ndim < 2 or len({a.shape[1] for a in arrays}) == 1:
        return np.concatenate(arrays)
    length = max(a.shape[1] for a in arrays)
    padded = []
    for a in arrays:
        width = [(0, 0)] * a.ndim
        width[1] = (0, length - a.shape[1])
        padded.append(np.pad(a, width, constant_values=fill))
    return np.concatenate(padded)


def make_dataloader(ds: datasets.Dataset, tokenizer: Any, batch_size: int, shuffle: bool,
                    seed: int = 0, group_by_length: bool = False) -> torch.utils.data.DataLoader:
    """Batches of a tokenised split, each padded to its own longest example.

    Only :data:`MODEL_COLUMNS` present in ``ds`` are kept. Each batch is a
    dict of tensors: ``input_ids``/``attention_mask``/``token_type_ids`` of
    shape (B, L_batch) int64 where L_batch is the longest example in that
    batch (tokens), and ``labels`` (B,) int64 or float32. With ``shuffle`` the
    order comes from a ``torch.Generator`` seeded with ``seed`` (same seed,
    same order), available as ``loader.generator``; reseeding it before a pass
    replays that pass's order.

    Args:
        group_by_length: with ``shuffle``, draw the order with a
            :class:`LengthGroupedSampler` on that same generator: every
            example still comes once per pass, but batches group examples of
            similar length, so L_batch, and the padding, shrink.

    Raises:
        ConfigError: ``batch_size`` < 1, or ``group_by_length`` without ``shuffle``.
        DataError: ``group_by_length`` and ``ds`` has no ``input_ids``.
    """
    import torch
    from transformers import DataCollatorWithPadding

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if group_by_length and not shuffle:
        raise ConfigError("group_by_length needs shuffle=True (it reorders the examples)")
    ds = ds.select_columns([c for c in MODEL_COLUMNS if c in ds.column_names])
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    token_level = len(ds) > 0 and isinstance(ds[0]["labels"], list)
    collate = TokenLevelCollator(tokenizer) if token_level else DataCollatorWithPadding(tokenizer)
    if group_by_length:
        sampler = LengthGroupedSampler(example_lengths(ds), batch_size, generator)
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler,
                                           generator=generator, collate_fn=collate)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       generator=generator, collate_fn=collate)
