"""Stock Hugging Face forms of restructured successors, where one computes exactly the same.

A successor with a factorised word embedding or shared layers is saved for theseus's
loader (``theseus_successor.json``). Two of them have a stock class that computes the
same function, so ``export --format hf`` can write them for stock ``transformers``:

- a **DeBERTa-v2/v3** successor whose only change is a factorised word embedding
  (V × r table, r × H map), when the model adds no position or token-type embedding
  before its LayerNorm (``position_biased_input: false``, ``type_vocab_size: 0``, as
  DeBERTa-v3): DeBERTa-v2's ``embedding_size`` r with its ``embed_proj`` (r × H, no
  bias) applies the map before the LayerNorm, exactly as the factorised embedding does;
- a **BERT** successor whose only change is cross-layer sharing in contiguous groups:
  ALBERT (Lan et al. 2020) applies layer group ``int(i / (L / G))`` at position i, and
  its layer is BERT's (attention, LayerNorm, FFN, LayerNorm) under other names; its
  embedding size is set to the hidden size and its embedding-to-hidden map to the
  identity (H² + H parameters more on disk than the shared BERT, 0.15 M at H = 384).

Each returns None where the form would not be exact; export compares the stock
model's logits with the theseus model's before publishing either.

No torch at module level (plugin modules must be cheap to import).
"""

from __future__ import annotations

from typing import Any

#: BERT layer parameter names -> ALBERT's (``albert_layer_groups.g.albert_layers.0.``)
_ALBERT_LAYER = {
    "attention.self.query.": "attention.query.",
    "attention.self.key.": "attention.key.",
    "attention.self.value.": "attention.value.",
    "attention.output.dense.": "attention.dense.",
    "attention.output.LayerNorm.": "attention.LayerNorm.",
    "intermediate.dense.": "ffn.",
    "output.dense.": "ffn_output.",
    "output.LayerNorm.": "full_layer_layer_norm.",
}


def _meta(model: Any) -> dict[str, Any]:
    return getattr(model, "theseus_successor", None) or {}


def _only(meta: dict[str, Any], key: str) -> bool:
    """``meta`` changes the stock model by ``key`` alone (no restructured layer)."""
    others = {"embedding", "shared"} - {key}
    return bool(meta.get(key)) and not any(meta.get(k) for k in others) and not any(
        s is not None for s in meta.get("specs") or [])


def deberta_factorized(model: Any) -> tuple[Any, str] | None:
    """The stock DeBERTa-v2 model with ``embedding_size`` r equal to ``model`` (a
    DeBERTa-v2 successor with a factorised word embedding, nothing else restructured),
    or None where DeBERTa's embedding would differ (a position or token-type embedding
    added before the projection, or an ``embedding_size`` of its own)."""
    import copy

    import torch

    meta, config = _meta(model), model.config
    if not _only(meta, "embedding") or meta["embedding"].get("type") != "factorized":
        return None
    hidden = config.hidden_size
    if (getattr(config, "position_biased_input", True) or config.type_vocab_size
            or getattr(config, "embedding_size", hidden) not in (None, hidden)):
        return None
    factorized = model.get_input_embeddings()
    stock_config = copy.deepcopy(config)
    stock_config.embedding_size = factorized.rank
    with torch.random.fork_rng(devices=[]):
        stock = type(model)(stock_config)
    prefix = next(n for n, m in model.named_modules() if m is factorized) + "."
    proj = prefix.replace("word_embeddings.", "embed_proj.")
    state = {}
    for key, value in model.state_dict().items():  # (V, r) table and (H, r) map renamed
        if key.startswith(prefix):
            key = (prefix + "weight" if key == prefix + "table.weight" else
                   proj + "weight" if key == prefix + "project.weight" else key)
        state[key] = value
    stock.load_state_dict(state, strict=True)
    return stock.to(next(model.parameters()).device).eval(), (
        f"stock {type(stock).__name__} with embedding_size {factorized.rank} (the factorised "
        "word embedding as DeBERTa's embedding and its embed_proj)")


def albert_from_shared_bert(model: Any) -> tuple[Any, str] | None:
    """The stock ALBERT model equal to ``model`` (a BERT successor whose only change is
    cross-layer sharing in contiguous groups), or None (another change, groups that are
    not contiguous, relative position embeddings, or a head ALBERT lacks)."""
    import torch
    import transformers

    meta, config = _meta(model), model.config
    if not _only(meta, "shared") or getattr(config, "position_embedding_type",
                                            "absolute") not in (None, "absolute"):
        return None
    shared, n = meta["shared"], len(meta["shared"])
    owners = [i if j is None else j for i, j in enumerate(shared)]
    groups = sorted(set(owners))
    size = n // len(groups)
    if n % len(groups) or owners != [groups[i // size] for i in range(n)]:
        return None  # not ALBERT's int(i / (L / G))
    cls = getattr(transformers, type(model).__name__.replace("Bert", "Albert", 1), None)
    if cls is None or not type(model).__name__.startswith("Bert"):
        return None
    hidden = config.hidden_size
    albert = transformers.AlbertConfig(
        vocab_size=config.vocab_size, embedding_size=hidden, hidden_size=hidden,
        num_hidden_layers=n, num_hidden_groups=len(groups), inner_group_num=1,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        classifier_dropout_prob=(getattr(config, "classifier_dropout", None)
                                 or config.hidden_dropout_prob),
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size, layer_norm_eps=config.layer_norm_eps,
        initializer_range=config.initializer_range, pad_token_id=config.pad_token_id,
        num_labels=config.num_labels, id2label=config.id2label, label2id=config.label2id,
        problem_type=config.problem_type)
    with torch.random.fork_rng(devices=[]):
        stock = cls(albert)
    base = model.base_model_prefix + "."  # "bert."
    state: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        if not key.startswith(base):  # the head: same names
            state[key] = value
            continue
        rest = key[len(base):]
        if rest.startswith("encoder.layer."):
            index, name = rest[len("encoder.layer."):].split(".", 1)
            if int(index) not in groups:
                continue  # a repeating position: its group's weights are saved once
            new = next((name.replace(b, a, 1) for b, a in _ALBERT_LAYER.items()
                        if name.startswith(b)), None)
            if new is None:
                return None
            rest = f"encoder.albert_layer_groups.{groups.index(int(index))}.albert_layers.0.{new}"
        elif rest.startswith("pooler.dense."):
            rest = rest.replace("pooler.dense.", "pooler.", 1)
        state["albert." + rest] = value
    ref = next(model.parameters())
    state["albert.encoder.embedding_hidden_mapping_in.weight"] = torch.eye(
        hidden, dtype=ref.dtype, device=ref.device)
    state["albert.encoder.embedding_hidden_mapping_in.bias"] = torch.zeros(
        hidden, dtype=ref.dtype, device=ref.device)
    missing, unexpected = stock.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("position_ids")]:
        return None
    return stock.to(ref.device).eval(), (
        f"stock {cls.__name__} with {len(groups)} layer group(s) applied {n} times (the "
        "shared layers as ALBERT's, embedding size = hidden size, an identity map)")
