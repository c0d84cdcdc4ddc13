"""The ``narrow-hidden`` successor type: a narrower hidden size inside each successor
module (PCA projections at the module boundary, heads and neurons kept in proportion;
the torch-level work is in :mod:`theseus_builtin.successors.narrowing`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from theseus_builtin.successors.copy_layers import (
    renumber,
)
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import param

if TYPE_CHECKING:
    from torch import nn

from theseus_builtin.successors.shrinking import HeadPrunedBuilder, ShrinkParams


class NarrowHiddenBuilder(HeadPrunedBuilder):
    """Successor modules that work in a smaller hidden size h between learned projections
    at the module boundary (the paper's future work, section 6): H → h → the family's
    layer at width h → H (:class:`theseus_builtin.successors.narrowing.NarrowHiddenLayer`).

    Module i starts from its source layer: the projections are the top-h principal
    directions of the hidden states entering that layer of the teacher on
    ``calibration_batches`` training batches, its weights are carried into that basis,
    and it keeps the ``hidden_fraction`` most important heads (Michel et al., as
    ``head-pruned``; the head size stays, h = kept heads × head size) and feed-forward
    neurons in the same proportion (by weight, as ``narrow-ffn``). Saved with
    ``theseus_successor.json`` and loaded by the theseus loader. Needs a family that names
    its attention and feed-forward projections (``LayerListFamily.attention``, ``ffn``).
    """

    name = "narrow-hidden"
    help = ("copies of predecessor layers working in a smaller hidden size between learned "
            "projections at the module boundary (paper's future work; theseus loader)")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "narrow-hidden"
        fractions: ClassVar[tuple[str, ...]] = ("hidden_fraction",)
        hidden_fraction: float = param(0.5, "fraction of the hidden size (in whole heads) and "
                                            "of the feed-forward neurons each module keeps",
                                       min=0.0, max=1.0)
        calibration_batches: int = param(8, "training batches the projections and head "
                                            "importance are measured on", min=1)

    def _narrow(self, layer: nn.Module, basis, q, kv, neurons) -> nn.Module:
        from theseus_builtin.successors import narrowing

        try:
            return narrowing.narrow_layer(layer, self._anatomy(), self._ffn(), basis, q, kv,
                                          neurons)
        except ValueError as e:
            raise ConfigError(f"narrow-hidden: model family "
                              f"{getattr(self.family, 'name', '?')!r}: {e}; choose another "
                              "successor builder") from None

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Narrow-hidden modules made from the chosen layers (class docstring).

        Raises:
            ConfigError: the family lacks the anatomy, or no calibration was set.
        """
        import torch
        from torch import nn

        from theseus_builtin.successors import narrowing, shrink

        block, ffn = self._anatomy(), self._ffn()
        teacher_layers, scores = self._head_scores()  # one (H,) per layer
        teacher, batches = self.calibration.model, self.calibration.batches
        picks = self.source_layers(len(predecessor_layers), num_modules)
        modules = []
        for j in picks:
            layer = predecessor_layers[j]
            q, kv = self.kept_heads(layer, scores[j], self.params.hidden_fraction)
            _, _, d = block.head_counts(layer)
            basis = narrowing.stream_basis(teacher, teacher_layers[j], batches, len(q) * d)
            output = layer.get_submodule(ffn.output)
            size, hidden = shrink.sizes(output)  # (I, H)
            keep = max(1, round(size * len(q) * d / hidden))
            score = shrink.neuron_importance([layer.get_submodule(n) for n in ffn.inputs],
                                             output, ffn.packed)  # (I,)
            neurons = torch.topk(score, keep).indices.sort().values  # (keep,)
            modules.append(self._narrow(layer, basis, q, kv, neurons))
        return renumber(nn.ModuleList(modules)).requires_grad_(True)

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """``{"width": h, "heads": query heads, "kv_heads": key/value heads, "neurons": I'}``."""
        from theseus_builtin.successors import shrink

        inner = module.layer
        heads, kv_heads, _ = self._anatomy().head_counts(inner)
        neurons = shrink.sizes(inner.get_submodule(self._ffn().output))[0]
        spec = {"width": module.down.out_features, "heads": heads, "kv_heads": kv_heads,
                "neurons": neurons}
        kept = shrink.bias_heads(inner, self._anatomy())  # MPNet: its bias rows
        return spec if kept is None else {**spec, "bias_heads": kept}

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """A narrow-hidden module of ``spec``'s sizes made from ``layer`` (the saved weights
        then fill it)."""
        import torch

        from theseus_builtin.successors import shrink

        q, kv = self._first_heads(layer, spec["kv_heads"])
        hidden = shrink.sizes(layer.get_submodule(self._ffn().output))[1]
        basis = torch.eye(hidden)[: int(spec["width"])]  # (h, H)
        module = self._narrow(layer, basis, q, kv, torch.arange(int(spec["neurons"])))
        if spec.get("bias_heads") is not None:
            shrink.set_bias_heads(module.layer, self._anatomy(), spec["bias_heads"])
        return module
