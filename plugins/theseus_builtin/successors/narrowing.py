"""Torch-level helpers of the ``narrow-hidden`` successor type (imported lazily).

A narrow-hidden module is one of the family's own layers working in a smaller hidden
size h < H between two learned projections at the module boundary:

    x (B, T, H) --down--> (B, T, h) --layer at width h--> (B, T, h) --up--> (B, T, H)

so it fits anywhere in the predecessor's H-wide residual stream (module replacing mixes
the two), and the family's own loop (masks, rotary embeddings) calls it unchanged; other
H-wide inputs of the layer call (DeBERTa's relative-position embeddings) go down too. It
starts from a predecessor layer: the projections are the top-h principal directions P
(h × H) of the hidden states entering that layer on calibration batches (down = P,
up = Pᵀ, so up(down(x)) is x's projection on them), and the layer's weights are carried
into that basis: maps reading the stream W → W Pᵀ, maps writing it W → P W, b → P b,
norm gains γ → (P∘P) γ and biases β → P β; it keeps the most important heads (the same
head size, so rotary embeddings still fit) and feed-forward neurons in proportion.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from theseus_builtin.successors import shrink


class NarrowHiddenLayer(nn.Module):
    """``up(layer(down(x), ...))``: a layer of width h inside an H-wide stream.

    Args:
        layer: the family's layer class narrowed to width h (its own call convention).
        hidden: H, the predecessor's hidden size.
        width: h.
        side_inputs: keyword arguments that are H wide too (DeBERTa's ``rel_embeddings``,
            (2k, H)): projected by ``down`` as well.

    Forward: ``hidden_states`` (B, T, H) first (or as keyword), every other argument
    passed through to ``layer``; returns what ``layer`` returns with its hidden states
    (the first element of a tuple) mapped back to (B, T, H).
    """

    def __init__(self, layer: nn.Module, hidden: int, width: int,
                 side_inputs: tuple[str, ...] = ()):
        super().__init__()
        self.down = nn.Linear(hidden, width, bias=False)  # weight (h, H)
        self.layer = layer
        self.up = nn.Linear(width, hidden, bias=False)  # weight (H, h)
        self.side_inputs = tuple(side_inputs)

    def __getattr__(self, name: str) -> Any:
        """Attributes the family's loop reads off its layers (ModernBERT's
        ``attention_type``) come from the wrapped layer."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            layer = self._modules.get("layer")
            if layer is None:
                raise
            return getattr(layer, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - see class
        for name in self.side_inputs:
            if kwargs.get(name) is not None:
                kwargs[name] = self.down(kwargs[name])  # (..., H) -> (..., h)
        if args:
            out = self.layer(self.down(args[0]), *args[1:], **kwargs)
        else:
            kwargs["hidden_states"] = self.down(kwargs["hidden_states"])
            out = self.layer(**kwargs)
        if isinstance(out, tuple):
            return (self.up(out[0]), *out[1:])
        return self.up(out)


def stream_basis(model: nn.Module, layer: nn.Module, batches: list[dict], width: int
                 ) -> torch.Tensor:
    """P (width, H): the top principal directions (uncentred second moment) of the hidden
    states entering ``layer`` (B, T, H) over the non-padding tokens of ``batches``, run
    through ``model`` in eval mode without gradients. Rows are orthonormal."""
    moments: list[torch.Tensor] = []

    def grab(module, args, kwargs):
        x = args[0] if args else kwargs["hidden_states"]  # (B, T, H)
        moments.append(x)

    handle = layer.register_forward_pre_hook(grab, with_kwargs=True)
    was_training = model.training
    model.eval()
    try:
        second, count = None, 0
        with torch.no_grad():
            for batch in batches:
                moments.clear()
                model(**{k: v for k, v in batch.items() if k != "labels"})
                x = moments[0].float()  # (B, T, H)
                keep = batch["attention_mask"].bool() if "attention_mask" in batch else None
                rows = x[keep] if keep is not None else x.flatten(0, 1)  # (N, H)
                m = rows.T @ rows  # (H, H)
                second = m if second is None else second + m
                count += rows.shape[0]
    finally:
        handle.remove()
        model.train(was_training)
    _, vectors = torch.linalg.eigh(second / max(count, 1))  # ascending eigenvalues
    return vectors[:, -width:].flip(-1).T.contiguous()  # (width, H), largest first


def _reading(linear: nn.Module, basis: torch.Tensor) -> nn.Module:
    """A map reading the stream, W (out, H) → W Pᵀ (out, h)."""
    w = shrink.weight_out_in(linear).detach()
    bias = getattr(linear, "bias", None)
    out = nn.Linear(basis.shape[0], w.shape[0], bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(w @ basis.T.to(w))
        if bias is not None:
            out.bias.copy_(bias.detach())
    return shrink._like(linear, out)


def _writing(linear: nn.Module, basis: torch.Tensor) -> nn.Module:
    """A map writing the stream, W (H, in) → P W (h, in), b → P b."""
    w = shrink.weight_out_in(linear).detach()
    bias = getattr(linear, "bias", None)
    out = nn.Linear(w.shape[1], basis.shape[0], bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(basis.to(w) @ w)
        if bias is not None:
            out.bias.copy_(basis.to(w) @ bias.detach())
    return shrink._like(linear, out)


def narrow_layer(layer: nn.Module, block: Any, ffn: Any, basis: torch.Tensor,
                 heads: torch.Tensor, kv_heads: torch.Tensor, neurons: torch.Tensor
                 ) -> NarrowHiddenLayer:
    """A :class:`NarrowHiddenLayer` of width h = ``basis.shape[0]`` made from a copy of
    ``layer``: query heads ``heads``, key/value heads ``kv_heads`` and feed-forward
    neurons ``neurons`` (sorted indices) kept, every H-wide weight carried into ``basis``
    (module docstring). ``layer`` is left as it was.

    Raises:
        ValueError: an H-wide weight that is neither a known projection nor a norm
            (the family's layer has parts this type does not know how to narrow).
    """
    hidden, width = basis.shape[1], basis.shape[0]
    inner = copy.deepcopy(layer)
    shrink.keep_heads(inner, block, heads, kv_heads)
    for name in ffn.inputs:
        shrink.set_submodule(inner, name, shrink.select_rows(inner.get_submodule(name),
                                                             neurons, ffn.packed))
    shrink.set_submodule(inner, ffn.output,
                         shrink.select_columns(inner.get_submodule(ffn.output), neurons))
    per_head = shrink.present(inner, block.per_head)  # DeBERTa: pos_key_proj, ...
    reads = tuple(dict.fromkeys((block.query, block.key, block.value, *per_head, *ffn.inputs)))
    writes = (block.output, ffn.output)
    for name in reads:
        shrink.set_submodule(inner, name, _reading(inner.get_submodule(name), basis))
    for name in writes:
        shrink.set_submodule(inner, name, _writing(inner.get_submodule(name), basis))
    linears = shrink.linear_maps(inner)
    for name, module in inner.named_modules():
        if name in reads or name in writes:
            continue
        if name in linears and hidden in shrink.sizes(module):
            raise ValueError(f"{type(layer).__name__}.{name} is an H-wide map that is neither "
                             "an attention nor a feed-forward projection")
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.dim() == 1 and weight.numel() == hidden:
            _narrow_norm(module, basis)
    inner.requires_grad_(True)
    wrapped = NarrowHiddenLayer(inner, hidden, width, block.side_inputs)
    ref = next(layer.parameters())
    with torch.no_grad():
        wrapped.down.weight.copy_(basis)
        wrapped.up.weight.copy_(basis.T)
    return wrapped.to(device=ref.device, dtype=ref.dtype)


def _narrow_norm(module: nn.Module, basis: torch.Tensor) -> None:
    """A norm over the stream (LayerNorm, RMSNorm): gain γ → (P∘P) γ, bias β → P β."""
    with torch.no_grad():
        weight = module.weight.detach()
        module.weight = nn.Parameter((basis.to(weight) ** 2) @ weight)
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            module.bias = nn.Parameter(basis.to(bias) @ bias.detach())
    if hasattr(module, "normalized_shape"):
        module.normalized_shape = (basis.shape[0],)
