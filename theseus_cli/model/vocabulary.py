"""Vocabulary trimming: a successor keeps only the word-embedding rows its inputs use.

The word embedding (V × E) is the largest single tensor of a small Transformer (the
embedded MiniLM: 30,522 × 384 = 11.7M of 22.7M parameters). A task reads a small part
of the vocabulary, so the successor keeps the rows of:

- every special token ([CLS], [SEP], [PAD], [UNK], [MASK], added tokens), always;
- every token the training set's tokenisation uses;
- with ``keep_characters``, every single-character token and its ``##`` continuation,
  so any word can still be spelled out and hardly any dev token becomes [UNK];
- the most frequent tokens of a reference text the user names, if any.

The kept rows keep their order; ids are renumbered 0 .. k − 1, in the tokenizer too.
Only WordPiece tokenizers are trimmed: WordPiece matches greedily the longest token of
its vocabulary, so a word whose pieces are all kept is split exactly as before (any
longer match would have been chosen before, and is kept if it was). Byte-level BPE and
SentencePiece tokenizers build tokens by merges whose intermediate pieces a trimmed
vocabulary may lack; they are refused (:func:`check_trimmable`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from theseus_cli.errors import ConfigError, ModelSourceError

#: model types whose stock tokenizers are WordPiece (checked again on the tokenizer itself)
WORDPIECE_MODEL_TYPES = ("bert", "electra", "distilbert", "mpnet")


def vocabulary_key(tokenizer: Any) -> tuple:
    """Equal for tokenizers with the same vocabulary (they tokenise alike, so one tokenised
    dataset serves them); a trimmed vocabulary differs."""
    return (type(tokenizer).__name__, len(tokenizer),
            hash(frozenset(tokenizer.get_vocab().items())))


def tokenizer_model_type(tokenizer: Any) -> str:
    """The backend model type of a fast tokenizer: ``WordPiece``, ``BPE``, ``Unigram``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return "slow (no tokenizers backend)"
    return json.loads(backend.to_str())["model"]["type"]


def check_trimmable(tokenizer: Any, where: str = "the model's tokenizer") -> None:
    """Refuse a tokenizer whose vocabulary cannot be trimmed safely.

    Raises:
        ConfigError: not a WordPiece tokenizer (names its type and why).
    """
    kind = tokenizer_model_type(tokenizer)
    if kind != "WordPiece":
        raise ConfigError(
            f"{where} is {kind}, not WordPiece: its tokens are built by merges (BPE) or "
            "scored pieces (Unigram) whose intermediate pieces a trimmed vocabulary may lack, "
            "so trimming could change how kept words are split. Vocabulary trimming is "
            f"offered for WordPiece tokenizers (model types {', '.join(WORDPIECE_MODEL_TYPES)})")


def character_ids(tokenizer: Any) -> set[int]:
    """Ids of the single-character tokens and their ``##`` continuations."""
    return {i for t, i in tokenizer.get_vocab().items()
            if len(t) == 1 or (t.startswith("##") and len(t) == 3)}


def reference_ids(tokenizer: Any, path: Path, top: int | None) -> set[int]:
    """Ids of the ``top`` most frequent tokens of a text file (every token when None).

    Raises:
        ModelSourceError: the file cannot be read (names it).
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ModelSourceError(f"reference text {path}: {e}") from None
    counts: Counter[int] = Counter()
    for start in range(0, len(lines), 1000):
        for ids in tokenizer(lines[start:start + 1000], add_special_tokens=False)["input_ids"]:
            counts.update(ids)
    return {i for i, _ in counts.most_common(top)}


def kept_ids(tokenizer: Any, used: Iterable[Iterable[int]], characters: bool = True,
             extra: Iterable[int] = ()) -> list[int]:
    """The sorted ids a trimmed vocabulary keeps: specials, ``used`` rows' ids, characters
    (with ``characters``) and ``extra``."""
    keep = set(tokenizer.all_special_ids)
    keep.update(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    for row in used:
        keep.update(int(i) for i in row)
    if characters:
        keep |= character_ids(tokenizer)
    keep.update(int(i) for i in extra)
    return sorted(keep)


def trim_tokenizer(tokenizer: Any, kept: list[int], out_dir: Path) -> Any:
    """Save ``tokenizer`` to ``out_dir`` with only the ``kept`` ids (renumbered in order)
    and load it back.

    Raises:
        ConfigError: not a WordPiece tokenizer (:func:`check_trimmable`).
    """
    from transformers import AutoTokenizer

    check_trimmable(tokenizer)
    new_id = {old: new for new, old in enumerate(kept)}
    out_dir = Path(out_dir)
    tokenizer.save_pretrained(out_dir)
    path = out_dir / "tokenizer.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]  # token -> old id
    spec["model"]["vocab"] = {t: new_id[i] for t, i in sorted(vocab.items(), key=lambda x: x[1])
                              if i in new_id}
    spec["added_tokens"] = [{**t, "id": new_id[t["id"]]} for t in spec.get("added_tokens", [])
                            if t["id"] in new_id]
    post = spec.get("post_processor") or {}
    for processor in [post, *post.get("processors", [])]:
        for special in (processor.get("special_tokens") or {}).values():
            special["ids"] = [new_id[i] for i in special["ids"]]
        for key in ("sep", "cls"):  # BertProcessing / RobertaProcessing: [token, id]
            if isinstance(processor.get(key), list):
                processor[key] = [processor[key][0], new_id[processor[key][1]]]
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id[spec["padding"]["pad_id"]]
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    for stale in ("vocab.txt", "special_tokens_map.json"):
        (out_dir / stale).unlink(missing_ok=True)
    trimmed = AutoTokenizer.from_pretrained(str(out_dir))
    if len(trimmed) != len(kept):
        raise ModelSourceError(f"the trimmed tokenizer has {len(trimmed)} tokens, expected "
                               f"{len(kept)}")
    return trimmed


def trim_embedding(model: Any, kept: list[int]) -> None:
    """Keep only the ``kept`` rows of ``model``'s input word embedding (in place) and
    renumber the config's token ids (``pad_token_id``, ...) as the tokenizer was.

    Shapes: the word embedding (V, E) becomes (k, E), k = len(kept); of a factorised one,
    its (V, r) table becomes (k, r).

    Raises:
        ConfigError: the input embedding is not an ``nn.Embedding``, or a config token id
            is not kept.
    """
    import torch
    from torch import nn

    from theseus_cli.model.embedding import FactorizedEmbedding  # torch at its top

    outer = model.get_input_embeddings()
    emb = outer.table if isinstance(outer, FactorizedEmbedding) else outer  # (V, r) rows
    if not isinstance(emb, nn.Embedding):
        raise ConfigError(f"{type(model).__name__}'s input embedding is a {type(emb).__name__}, "
                          "not an nn.Embedding: its vocabulary cannot be trimmed")
    new_id = {old: new for new, old in enumerate(kept)}
    index = torch.tensor(kept, dtype=torch.long, device=emb.weight.device)
    pad = new_id.get(emb.padding_idx) if emb.padding_idx is not None else None
    trimmed = nn.Embedding(len(kept), emb.embedding_dim, padding_idx=pad,
                           device=emb.weight.device, dtype=emb.weight.dtype)
    with torch.no_grad():
        trimmed.weight.copy_(emb.weight[index])  # (k, E) rows of (V, E)
    if isinstance(outer, FactorizedEmbedding):
        outer.table = trimmed
    else:
        model.set_input_embeddings(trimmed)
    config = model.config
    config.vocab_size = len(kept)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            if value not in new_id:
                raise ConfigError(f"config.{key} = {value} is not among the kept tokens")
            setattr(config, key, new_id[value])


def unknown_share(tokenizer: Any, rows: Iterable[Iterable[int]]) -> float:
    """Share of the (non-special) tokens of tokenised ``rows`` that are [UNK]."""
    unk, special = tokenizer.unk_token_id, set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    total = hits = 0
    for row in rows:
        for i in row:
            if i in special:
                continue
            total += 1
            hits += i == unk
    return hits / total if total else 0.0
