"""Parameter counts of predecessors, hybrids and successors (tied or shared weights
counted once), for manifests and tables."""

from __future__ import annotations

from torch import nn

from theseus_cli.method.replacing import ModuleRouter
from theseus_cli.plugin.registry import family_of


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters with requires_grad=True (for a hybrid: the successor modules)."""
    return [prm for prm in model.parameters() if prm.requires_grad]


def _numel(module: nn.Module | None) -> int:
    return 0 if module is None else sum(prm.numel() for prm in module.parameters())


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Count parameters (unique tensors; tied or shared weights counted once).

    Keys for any model: ``total``, ``layers`` (the Transformer layers: the family's
    layer list), ``other`` (= total - layers: embeddings, norms, pooler, head) and
    ``embedding`` (of ``other``: the input word embedding, V × E, or its factors).
    For a hybrid two more keys: ``predecessor_path`` (the original model: everything
    but the successor modules) and ``successor_path`` (everything but the
    predecessor layers: the size of the model :func:`assemble_successor` builds).
    """
    total = _numel(model)
    get = getattr(model, "get_input_embeddings", None)
    embedding = _numel(get()) if callable(get) else 0
    router = getattr(model, "theseus_router", None)
    if isinstance(router, ModuleRouter):
        predecessor = _numel(nn.ModuleList(_unique(router.predecessor_layers)))
        successor = _numel(router.successor_modules)
        slot = router.embedding  # a replaced word embedding: each path has one of the two
        own_emb = (0, 0) if slot is None else (_numel(slot.predecessor), _numel(slot.successor))
        return {"total": total, "layers": predecessor + successor,
                "other": total - predecessor - successor, "embedding": embedding,
                "predecessor_path": total - successor - own_emb[1],
                "successor_path": total - predecessor - own_emb[0]}
    try:
        layers = _numel(nn.ModuleList(_unique(family_of(model).layers(model))))
    except Exception:  # noqa: BLE001 - a model of no known family: no breakdown
        layers = 0
    return {"total": total, "layers": layers, "other": total - layers, "embedding": embedding}


def _unique(modules: list[nn.Module]) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for m in modules:
        seen.setdefault(id(m), m)
    return list(seen.values())
