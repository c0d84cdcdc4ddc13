"""Torch-level helpers of the shrinking successor types (imported lazily by
``successor_types``): truncated-SVD factorisation and FFN neuron selection.

Linear maps are ``nn.Linear`` (weight (out, in)) or transformers' ``Conv1D`` (GPT-2;
weight (in, out)); both are handled, and the result is always ``nn.Linear``-based.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - every supported transformers has it
        return None
    return Conv1D


def linear_maps(module: nn.Module) -> dict[str, nn.Module]:
    """Dotted name -> every ``nn.Linear`` / ``Conv1D`` inside ``module``."""
    kinds = tuple(t for t in (nn.Linear, _conv1d_type()) if t is not None)
    return {name: m for name, m in module.named_modules() if isinstance(m, kinds) and name}


def weight_out_in(linear: nn.Module) -> torch.Tensor:
    """The map's weight as (out_features, in_features), whatever its class."""
    return linear.weight if isinstance(linear, nn.Linear) else linear.weight.t()


def sizes(linear: nn.Module) -> tuple[int, int]:
    """``(in_features, out_features)`` (of a :class:`LowRankLinear` too)."""
    if isinstance(linear, LowRankLinear):
        return linear.in_features, linear.out_features
    out_features, in_features = weight_out_in(linear).shape
    return in_features, out_features


class LowRankLinear(nn.Module):
    """``y = U (V x) + b``: a linear map of rank r as two linear maps.

    Shapes: x (..., in_features) -> V x (..., rank) -> y (..., out_features).
    Parameters: rank·(in + out) (+ out for the bias) instead of in·out.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.first = nn.Linear(in_features, rank, bias=False)  # V: (rank, in)
        self.second = nn.Linear(rank, out_features, bias=bias)  # U: (out, rank)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def svd_rank(weight: torch.Tensor, energy: float) -> int:
    """Smallest r whose top singular values keep ``energy`` of sum(s²) (ROSITA's rule)."""
    s = torch.linalg.svdvals(weight.detach().float())
    kept = torch.cumsum(s ** 2, 0) / (s ** 2).sum()
    target = torch.tensor(energy, dtype=kept.dtype, device=kept.device)
    rank = int(torch.searchsorted(kept, target).item()) + 1
    return min(rank, len(s))  # energy 1.0 may sit a rounding error above the last sum


def factorise(linear: nn.Module, rank: int) -> LowRankLinear:
    """Truncated SVD ``W ≈ (U_r √S_r)(√S_r V_rᵀ)`` of a linear map (best rank-r
    approximation in Frobenius norm, Eckart-Young)."""
    w = weight_out_in(linear).detach()
    in_features, out_features = sizes(linear)
    u, s, vh = torch.linalg.svd(w.float(), full_matrices=False)  # (out, k), (k,), (k, in)
    root = s[:rank].sqrt()
    bias = getattr(linear, "bias", None)
    out = LowRankLinear(in_features, out_features, rank, bias=bias is not None)
    with torch.no_grad():
        out.first.weight.copy_(root[:, None] * vh[:rank])  # (rank, in)
        out.second.weight.copy_(u[:, :rank] * root[None, :])  # (out, rank)
        if bias is not None:
            out.second.bias.copy_(bias.detach())
    return out.to(device=w.device, dtype=w.dtype)


def set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``name`` of ``root``."""
    parent_name, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attr, module)


def neuron_importance(inputs: list[nn.Module], output: nn.Module, packed: int) -> torch.Tensor:
    """Data-free importance of each of the I FFN neurons, shape (I,): the product of the
    norms of its input rows (each packed chunk and each input map: GLU gate and up) and
    of its output column. A neuron with small weights in or out contributes little."""
    score = weight_out_in(output).detach().float().norm(dim=0)  # (I,)
    for linear in inputs:
        rows = weight_out_in(linear).detach().float().norm(dim=1)  # (packed·I,)
        for chunk in rows.view(packed, -1):  # (I,) per packed chunk
            score = score * chunk
    return score


def select_rows(linear: nn.Module, index: torch.Tensor, packed: int = 1) -> nn.Module:
    """The output features ``index`` (in each of ``packed`` chunks) of a linear map."""
    w = weight_out_in(linear).detach()  # (packed·I, in)
    size = w.shape[0] // packed
    rows = torch.cat([index + c * size for c in range(packed)])
    bias = getattr(linear, "bias", None)
    out = nn.Linear(w.shape[1], len(rows), bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(w[rows])
        if bias is not None:
            out.bias.copy_(bias.detach()[rows])
    return _like(linear, out)


def select_columns(linear: nn.Module, index: torch.Tensor) -> nn.Module:
    """The input features ``index`` of a linear map."""
    w = weight_out_in(linear).detach()  # (out, I)
    bias = getattr(linear, "bias", None)
    out = nn.Linear(len(index), w.shape[0], bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(w[:, index])
        if bias is not None:
            out.bias.copy_(bias.detach())
    return _like(linear, out)


def _like(original: nn.Module, linear: nn.Linear) -> nn.Module:
    """``linear`` as the original's class (a GPT-2 ``Conv1D`` stays a Conv1D, so the
    family's stock layer with a smaller config loads it), device and dtype."""
    conv = _conv1d_type()
    ref = original.weight
    if conv is not None and isinstance(original, conv):
        out = conv(linear.out_features, linear.in_features)
        with torch.no_grad():
            out.weight.copy_(linear.weight.t())
            out.bias.copy_(linear.bias)
        linear = out
    return linear.to(device=ref.device, dtype=ref.dtype)


def present(root: nn.Module, names) -> list[str]:
    """Those of the dotted submodule ``names`` that ``root`` has."""
    out = []
    for name in names:
        try:
            root.get_submodule(name)
        except AttributeError:
            continue
        out.append(name)
    return out


def _attr(root: nn.Module, dotted: str):
    parent, _, name = dotted.rpartition(".")
    return getattr(root.get_submodule(parent) if parent else root, name)


def _set_attr(root: nn.Module, dotted: str, value) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, value)


def head_importance(model: nn.Module, layers, block, batches) -> list[torch.Tensor]:
    """Importance of every query head of every layer (Michel et al. 2019, eq. 2): the mean
    over ``batches`` of |∂L/∂ξ_h|, with a gate ξ_h = 1 on head h's context vector, taken
    at the input of the attention's output projection; normalised per layer (L2), as
    they do. The model is in eval mode; its parameters get no gradient.

    Returns:
        One tensor of shape (H,) per layer, in the order of ``layers``.
    """
    gates, handles = [], []
    flags = {p: p.requires_grad for p in model.parameters()}
    model.requires_grad_(False)
    was_training = model.training
    model.eval()
    try:
        for layer in layers:
            heads, _, d = block.head_counts(layer)
            gate = torch.ones(heads, requires_grad=True, device=next(layer.parameters()).device)

            def gated(module, args, gate=gate, d=d):
                x = args[0]  # (batch, seq_len, H·d)
                x = (x.unflatten(-1, (-1, d)) * gate[:, None]).flatten(-2)  # per head
                return (x, *args[1:])

            handles.append(layer.get_submodule(block.output).register_forward_pre_hook(gated))
            gates.append(gate)
        for batch in batches:
            model(**batch).loss.backward()
    finally:
        for h in handles:
            h.remove()
        for p, flag in flags.items():
            p.requires_grad_(flag)
        model.train(was_training)
    scores = [g.grad.abs() / max(1, len(batches)) if g.grad is not None
              else torch.zeros_like(g) for g in gates]
    return [s / (s.norm() + 1e-12) for s in scores]


def query_heads(kv_heads: torch.Tensor, group: int) -> torch.Tensor:
    """Query-head indices of the key/value heads ``kv_heads`` (k,) under grouped-query
    attention with ``group`` query heads per key/value head: (k · group,), sorted."""
    offsets = torch.arange(group, device=kv_heads.device)  # (group,)
    return (kv_heads[:, None] * group + offsets[None, :]).flatten()  # (k, group) -> (k·group,)


def keep_heads(layer: nn.Module, block, heads: torch.Tensor, kv_heads: torch.Tensor) -> None:
    """Keep query heads ``heads`` and key/value heads ``kv_heads`` (sorted indices) of a
    layer's attention, in place: the projections lose the other heads' rows (query, key,
    value) and columns (output); the head-count attributes follow."""
    _, _, d = block.head_counts(layer)

    def features(index: torch.Tensor) -> torch.Tensor:  # head indices -> feature indices
        return (index[:, None] * d + torch.arange(d, device=index.device)[None, :]).flatten()

    q_rows, kv_rows = features(heads), features(kv_heads)
    if block.fused:  # the same rows of each of the three chunks [q; k; v]
        set_submodule(layer, block.query,
                      select_rows(layer.get_submodule(block.query), q_rows, packed=3))
    else:
        for name, rows in ((block.query, q_rows), (block.key, kv_rows), (block.value, kv_rows)):
            set_submodule(layer, name, select_rows(layer.get_submodule(name), rows))
    for name in present(layer, block.per_head):  # DeBERTa's pos_*_proj: not always there
        set_submodule(layer, name, select_rows(layer.get_submodule(name), q_rows))
    set_submodule(layer, block.output, select_columns(layer.get_submodule(block.output), q_rows))
    if block.head_bias:  # kept heads as original indices (an already pruned layer's compose)
        before = bias_heads(layer, block)
        original = heads if before is None else torch.as_tensor(before)[heads.cpu()]
        set_bias_heads(layer, block, original)
    for name in block.counts:
        _set_attr(layer, name, len(heads))
    for name in block.sizes:
        _set_attr(layer, name, len(heads) * d)


class _HeadBias:
    """A forward pre-hook: the per-head bias argument keeps the rows of the kept heads,
    ``module.theseus_bias_heads`` (original head indices), (B or 1, H, L, L) -> (…, h, …)."""

    def __init__(self, position: int, keyword: str):
        self.position, self.keyword = position, keyword

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        index = module.theseus_bias_heads
        if kwargs.get(self.keyword) is not None:
            bias = kwargs[self.keyword]
            kwargs = {**kwargs, self.keyword: bias.index_select(1, index.to(bias.device))}
        elif len(args) > self.position and args[self.position] is not None:
            bias = args[self.position]
            args = (*args[:self.position], bias.index_select(1, index.to(bias.device)),
                    *args[self.position + 1:])
        return args, kwargs


def set_bias_heads(layer: nn.Module, block, heads: torch.Tensor) -> None:
    """Make the layer's ``block.head_bias`` module read only rows ``heads`` (original head
    indices) of its per-head bias (MPNet's relative position bias), by a forward pre-hook
    installed once; ``heads`` replaces any earlier selection."""
    import torch

    module = layer.get_submodule(block.head_bias)
    module.theseus_bias_heads = torch.as_tensor(heads, dtype=torch.long).clone()
    if not getattr(module, "theseus_bias_hook", False):
        module.register_forward_pre_hook(_HeadBias(*block.head_bias_arg), with_kwargs=True)
        module.theseus_bias_hook = True


def bias_heads(layer: nn.Module, block) -> list[int] | None:
    """The original indices of the heads whose bias rows the layer reads, or None (all,
    or the family has no per-head bias)."""
    if not block.head_bias:
        return None
    index = getattr(layer.get_submodule(block.head_bias), "theseus_bias_heads", None)
    return None if index is None else [int(i) for i in index]
