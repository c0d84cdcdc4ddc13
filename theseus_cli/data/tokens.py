"""Tokenisation with an on-disk cache keyed by the tokenizer's content."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theseus_cli.data.glue import GlueTask, get_task
from theseus_cli.errors import ConfigError, DataError
from theseus_cli.plugin.registry import kind_of

if TYPE_CHECKING:
    import datasets

#: Columns that :func:`tokenize_split` produces and models consume (plus the teacher's
#: logits, added for knowledge distillation).
MODEL_COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "labels", "teacher_logits")
CACHE_FORMAT = "theseus-tokenized-v3"


#: Tokenizer init kwargs that change how text is encoded (hashed with the content).
_ENCODING_KWARGS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars",
                    "do_basic_tokenize", "never_split", "add_prefix_space", "trim_offsets",
                    "add_bos_token", "add_eos_token", "legacy", "split_special_tokens")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 hex of what a tokenizer does, independent of where it was loaded from.

    Fast tokenizers: the backend's serialisation (``backend_tokenizer.to_str()``:
    normaliser, pre-tokeniser, vocabulary, added tokens, post-processor) with its
    transient ``truncation``/``padding`` state removed (a call with
    ``truncation=True`` changes it). Others: the sorted vocabulary and the
    sha256 of each vocabulary file. Both add the class name, the special tokens,
    ``truncation_side``, ``model_input_names`` and the init kwargs that affect
    encoding (:data:`_ENCODING_KWARGS`, e.g. ``do_lower_case``). The path
    (``name_or_path``) is left out: one tokenizer saved in two folders gives
    one fingerprint.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    init = getattr(tokenizer, "init_kwargs", None) or {}
    content: dict[str, Any] = {
        "class": type(tokenizer).__name__,
        "special": getattr(tokenizer, "special_tokens_map", {}),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "inputs": list(getattr(tokenizer, "model_input_names", []) or []),
        "init": {k: init[k] for k in _ENCODING_KWARGS if k in init},
    }
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        content["backend"] = state
    else:
        content["vocab"] = sorted(tokenizer.get_vocab().items())
        files = {}
        for name in sorted(getattr(tokenizer, "vocab_files_names", {}) or {}):
            path = init.get(name)
            if isinstance(path, (str, Path)) and Path(path).is_file():
                files[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        content["files"] = files
    blob = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_key(ds: datasets.Dataset, tokenizer: Any, task: GlueTask, max_seq_length: int) -> str:
    """sha256 hex over the dataset fingerprint, the tokenizer's content
    (:func:`tokenizer_fingerprint`, not its path), the task and the length."""
    fingerprint = getattr(ds, "_fingerprint", None)
    if not fingerprint:
        fingerprint = hashlib.sha256(json.dumps(ds.to_dict(), sort_keys=True,
                                                default=str).encode()).hexdigest()
    parts = {
        "format": CACHE_FORMAT,
        "dataset": fingerprint,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "task": task.name,
        "max_seq_length": max_seq_length,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def tokenize_split(ds: datasets.Dataset, tokenizer: Any, task: GlueTask | str,
                   max_seq_length: int, cache_dir: Path | None = None) -> datasets.Dataset:
    """Tokenise a split for the model, without padding, with an on-disk cache.

    The task's kind encodes (``TaskKind.encode``): text pairs are truncated
    (longest first) to ``max_seq_length`` tokens including special tokens; padding is left to the collator of
    :func:`make_dataloader`.

    Args:
        ds: output of :func:`load_split` (text fields and ``label`` columns).
        tokenizer: a Hugging Face tokenizer.
        max_seq_length: maximum tokens per example (>= 1).
        cache_dir: folder of cache entries, one sub-folder per key; default
            ``platformdirs.user_cache_dir("theseus")/tokenized``. The key is a
            sha256 over the dataset fingerprint, the tokenizer's content
            (:func:`tokenizer_fingerprint`: vocabulary, normalisation, special
            tokens, class; not its path, so every artifact version that carries
            the same tokenizer shares one entry), the task and
            ``max_seq_length``. Entries are
            written to a temporary folder and renamed into place, so a
            half-written entry is never read.

    Returns:
        A dataset of N rows with ``input_ids``, ``attention_mask``,
        ``token_type_ids`` (when the tokenizer makes them), all lists of ints
        of length <= ``max_seq_length``, and ``labels`` (int64; float32 for
        regression; -1 on unlabelled test splits; a token-level kind: one id per
        token, -100 where no tag is).

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
    key = cache_key(ds, tokenizer, task, max_seq_length)
    root = Path(cache_dir) if cache_dir is not None else (
        Path(platformdirs.user_cache_dir("theseus")) / "tokenized")
    target = root / key
    if target.is_dir():
        try:
            return datasets.load_from_disk(str(target))
        except Exception:  # unreadable entry: rebuild it below
            shutil.rmtree(target, ignore_errors=True)

    kind = kind_of(task)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        return kind.encode(tokenizer, [batch[f] for f in task.text_fields], batch["label"],
                           max_seq_length)

    tokenized = ds.map(encode, batched=True, remove_columns=ds.column_names,
                       keep_in_memory=True, new_fingerprint=key,
                       desc=f"Tokenizing {task.name}")
    label = datasets.Value("float32" if kind.regression else "int64")
    tokenized = tokenized.cast_column(
        "labels", datasets.Sequence(label) if kind.token_level else label)
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
