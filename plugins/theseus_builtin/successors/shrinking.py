"""Successor types beyond copies: narrower feed-forward blocks and low-rank layers.

Both start from the copies ``first-n`` or ``every-other`` would make (``layers``) and
shrink them before module replacing trains them:

- ``narrow-ffn``: keeps a fraction of each layer's feed-forward neurons, the most
  important by weight (product of the neuron's input-row and output-column norms,
  data-free); the family's config says the new size (``intermediate_size``), so the
  successor is a stock model.
- ``low-rank``: replaces every linear map of each layer by its truncated SVD at a rank
  (or the rank keeping a fraction of the spectrum's energy, as ROSITA); saved as
  safetensors with ``theseus_successor.json`` and loaded by ``theseus_cli.model.loading``.

No torch at module level (plugin modules must be cheap to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from theseus_builtin.successors.copy_layers import (
    CopyLayersBuilder,
    CopyLayersParams,
    EveryOtherBuilder,
    FirstNBuilder,
)
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import param

if TYPE_CHECKING:
    from torch import nn

COPY_SOURCES = {"first-n": FirstNBuilder.source_layer, "every-other": EveryOtherBuilder.source_layer}


@dataclass
class ShrinkParams(CopyLayersParams):
    """Settings shared by the shrinking types: which layers are copied, and from whom."""

    #: params that are a share of something kept, each in (0, 1] (0 would keep nothing)
    fractions: ClassVar[tuple[str, ...]] = ()

    layers: str = param("first-n", "which predecessor layers the modules start from, as the "
                                   "builder of that name picks them", choices=tuple(COPY_SOURCES))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layers not in COPY_SOURCES:
            raise ConfigError(f"{self.builder_name}: layers={self.layers!r} is invalid; "
                              f"accepted: {', '.join(COPY_SOURCES)}")
        for name in self.fractions:
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(f"{self.builder_name}: {name}={value!r} must be in (0, 1]")


class _ShrinkBuilder(CopyLayersBuilder):
    def source_layers(self, num_layers: int, num_modules: int) -> list[int]:
        """As ``first-n`` or ``every-other`` (``layers``) picks them."""
        picks = super().source_layers(num_layers, num_modules)  # validates n
        pick = COPY_SOURCES[self.params.layers]
        return [pick(i, num_layers, num_modules) for i in range(len(picks))]

    @staticmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:  # replaced above
        return i

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Copies of the chosen layers, each shrunk by :meth:`shrink`."""
        modules = super().build(predecessor_layers, num_modules)
        for module in modules:
            self.shrink(module)
        modules.requires_grad_(True)
        return modules

    def shrink(self, module: nn.Module) -> None:  # pragma: no cover - abstract in spirit
        raise NotImplementedError

    def _ffn(self):
        """The family's :class:`~theseus_cli.plugin.family.FeedForward`.

        Raises:
            ConfigError: the family does not say where its feed-forward block is.
        """
        ffn = getattr(self.family, "ffn", None)
        if ffn is None:
            name = getattr(self.family, "name", "?")
            raise ConfigError(f"{self.name}: model family {name!r} does not say where its "
                              "feed-forward block is (LayerListFamily.ffn); choose another "
                              "successor builder")
        return ffn


class NarrowFfnBuilder(_ShrinkBuilder):
    """Successor modules with ``ffn_fraction`` of the feed-forward neurons (stock model).

    The neurons kept in each module are the ``round(ffn_fraction · I)`` with the largest
    data-free importance (:func:`theseus_builtin.successors.shrink.neuron_importance`), in their
    original order; the family's :class:`~theseus_cli.plugin.family.FeedForward` says where
    the block is.
    """

    name = "narrow-ffn"
    help = ("copies of predecessor layers keeping a fraction of their feed-forward neurons, "
            "the most important by weight (a stock model with a smaller intermediate size)")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "narrow-ffn"
        fractions: ClassVar[tuple[str, ...]] = ("ffn_fraction",)
        ffn_fraction: float = param(0.5, "fraction of each layer's feed-forward neurons kept",
                                    min=0.0, max=1.0)

    def shrink(self, module: nn.Module) -> None:
        """Keep the most important neurons of ``module``'s feed-forward block, in place."""
        import torch

        from theseus_builtin.successors import shrink

        ffn = self._ffn()
        inputs = [module.get_submodule(n) for n in ffn.inputs]
        output = module.get_submodule(ffn.output)
        size = shrink.sizes(output)[0]  # I
        keep = max(1, round(self.params.ffn_fraction * size))
        score = shrink.neuron_importance(inputs, output, ffn.packed)  # (I,)
        index = torch.topk(score, keep).indices.sort().values  # (keep,)
        for name, linear in zip(ffn.inputs, inputs, strict=False):
            shrink.set_submodule(module, name, shrink.select_rows(linear, index, ffn.packed))
        shrink.set_submodule(module, ffn.output, shrink.select_columns(output, index))

    def config_updates(self, modules: Sequence[nn.Module]) -> dict[str, Any]:
        """``{size_key: kept neurons}`` (the same in every module)."""
        from theseus_builtin.successors import shrink

        ffn = self._ffn()
        kept = {shrink.sizes(m.get_submodule(ffn.output))[0] for m in modules}
        if len(kept) != 1:
            raise ConfigError(f"narrow-ffn: modules keep different numbers of neurons {kept}; "
                              "a stock config has one intermediate size")
        return {ffn.size_key: kept.pop()}


class LowRankBuilder(_ShrinkBuilder):
    """Successor modules whose linear maps are truncated SVDs (ROSITA-style).

    Every linear map (``nn.Linear`` or GPT-2's ``Conv1D``) of each copied layer with
    weight W (out × in) becomes ``U_r (V_r x) + b`` at rank r: ``rank`` if set, else the
    smallest rank keeping ``energy`` of sum(s²) if set, else ``ceil(rank_fraction ·
    min(in, out))``. A map is left whole when rank·(in + out) ≥ in·out (no saving).
    """

    name = "low-rank"
    help = ("copies of predecessor layers with every linear map factorised by truncated SVD "
            "(saved with a theseus loader)")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "low-rank"
        rank: int | None = param(None, "rank of every factorised map; null: energy or "
                                        "rank_fraction", min=1)
        energy: float | None = param(None, "keep the smallest rank whose singular values hold "
                                            "this fraction of sum(s²) (ROSITA); null: rank_fraction",
                                     min=0.0, max=1.0)
        rank_fraction: float = param(1 / 3, "rank = ceil(fraction · min(in, out)) when neither "
                                            "rank nor energy is set", min=0.0, max=1.0)

    def _rank(self, weight) -> int:
        import math

        from theseus_builtin.successors import shrink

        if self.params.rank is not None:
            return int(self.params.rank)
        if self.params.energy is not None:
            return shrink.svd_rank(weight, self.params.energy)
        return max(1, math.ceil(self.params.rank_fraction * min(weight.shape)))

    def shrink(self, module: nn.Module) -> None:
        """Factorise ``module``'s linear maps in place."""
        from theseus_builtin.successors import shrink

        factorised, useful = 0, []
        for name, linear in shrink.linear_maps(module).items():
            in_features, out_features = shrink.sizes(linear)
            rank = self._rank(shrink.weight_out_in(linear))
            # below in·out/(in + out) the two factors hold fewer parameters than W
            useful.append(-(-in_features * out_features // (in_features + out_features)) - 1)
            if rank * (in_features + out_features) < in_features * out_features:
                shrink.set_submodule(module, name, shrink.factorise(linear, rank))
                factorised += 1
        if useful and not factorised:
            setting = (f"rank={self.params.rank}" if self.params.rank is not None else
                       f"energy={self.params.energy:g}" if self.params.energy is not None
                       else f"rank_fraction={self.params.rank_fraction:g}")
            self.warn(f"low-rank {setting}: no linear map of a successor module is factorised "
                      "(the rank is at or above what saves parameters), so the module is an "
                      "unshrunk copy labelled low-rank; a rank of at most "
                      f"{max(1, min(useful))} factorises every map")

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """``{"ranks": {map name: rank}}``; None when no map was factorised."""
        from theseus_builtin.successors.shrink import LowRankLinear

        ranks = {n: m.rank for n, m in module.named_modules() if isinstance(m, LowRankLinear)}
        return {"ranks": ranks} if ranks else None

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """Put a :class:`~theseus_builtin.successors.shrink.LowRankLinear` of the saved rank in
        place of each map ``spec`` names."""
        from theseus_builtin.successors import shrink

        for name, rank in spec["ranks"].items():
            old = layer.get_submodule(name)
            in_features, out_features = shrink.sizes(old)
            new = shrink.LowRankLinear(in_features, out_features, int(rank),
                                       bias=getattr(old, "bias", None) is not None)
            shrink.set_submodule(layer, name, new.to(old.weight.device, old.weight.dtype))
        return layer


class HeadPrunedBuilder(_ShrinkBuilder):
    """Successor modules with ``head_fraction`` of the attention heads, the most important
    by Michel et al. (2019): the expected |∂L/∂ξ_h| of a gate on each head's output, over
    ``calibration_batches`` training batches of the fine-tuned teacher, normalised per
    layer. With grouped-query attention whole key/value groups are kept or dropped (a
    group scores the sum of its query heads). Transformers 5 has no ``pruned_heads``
    config, so the successor is saved with ``theseus_successor.json`` (heads per layer)
    and loaded by the theseus loader.
    """

    name = "head-pruned"
    help = ("copies of predecessor layers keeping a fraction of their attention heads, the most "
            "important on training batches (Michel et al. 2019; saved with a theseus loader)")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "head-pruned"
        fractions: ClassVar[tuple[str, ...]] = ("head_fraction",)
        head_fraction: float = param(0.5, "fraction of each layer's attention heads kept "
                                          "(key/value groups with grouped-query attention)",
                                     min=0.0, max=1.0)
        calibration_batches: int = param(8, "training batches the head importance is measured "
                                            "on (of the stage's batch size)", min=1)

    def calibration_batches(self) -> int:
        return int(self.params.calibration_batches)

    def _anatomy(self):
        block = getattr(self.family, "attention", None)
        if block is None:
            name = getattr(self.family, "name", "?")
            raise ConfigError(f"{self.name}: model family {name!r} does not say where its "
                              "attention projections are (LayerListFamily.attention: query, "
                              "key, value, output); add it to the family, or choose another "
                              "successor builder")
        return block

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Copies of the chosen layers, each keeping its source layer's most important heads.

        Raises:
            ConfigError: the family has no attention anatomy, or no calibration was set.
        """
        from theseus_builtin.successors import shrink

        _, scores = self._head_scores()
        picks = self.source_layers(len(predecessor_layers), num_modules)
        modules = CopyLayersBuilder.build(self, predecessor_layers, num_modules)
        for module, j in zip(modules, picks, strict=False):
            q, kv = self.kept_heads(module, scores[j], self.params.head_fraction)
            shrink.keep_heads(module, self._anatomy(), q, kv)
        modules.requires_grad_(True)
        return modules

    def _head_scores(self):
        """``(teacher layers, one importance (H,) per layer)`` on the calibration batches.

        Raises:
            ConfigError: no attention anatomy, or no calibration was set.
        """
        from theseus_builtin.successors import shrink

        block = self._anatomy()
        if self.calibration is None:
            raise ConfigError(f"{self.name}: no calibration batches were given (the replace "
                              "stage sets them; see SuccessorBuilder.calibration)")
        layers = self.family.layers(self.calibration.model)
        return layers, shrink.head_importance(self.calibration.model, layers, block,
                                              self.calibration.batches)

    def _first_heads(self, layer: nn.Module, kv_count: int):
        """``(query heads, key/value heads)``: the first ``kv_count`` key/value heads of
        ``layer`` and their query heads (a restructured layer; saved weights fill them)."""
        import torch

        from theseus_builtin.successors import shrink

        heads, kv_heads, _ = self._anatomy().head_counts(layer)
        kv = torch.arange(int(kv_count))
        return shrink.query_heads(kv, heads // kv_heads), kv

    def kept_heads(self, layer: nn.Module, score, fraction: float):
        """``(query heads, key/value heads)`` kept of ``layer``, sorted index tensors: the
        ``max(1, round(fraction · G))`` key/value heads of highest ``score`` (H,) (summed
        over each group under grouped-query attention) and their query heads."""
        import torch

        from theseus_builtin.successors import shrink

        heads, kv_heads, _ = self._anatomy().head_counts(layer)
        group = heads // kv_heads
        kept = max(1, round(fraction * kv_heads))
        if round(fraction * kv_heads) < 1:
            self.warn(f"{self.name} head_fraction={fraction:g}: {fraction:g} of {kv_heads} "
                      f"{'key/value ' if group > 1 else ''}heads rounds to 0; each module keeps "
                      f"1 instead (head_fraction ≥ {0.5 / kv_heads:.3g} keeps at least 1)")
        kv = torch.topk(score.view(kv_heads, group).sum(1), kept).indices.sort().values  # (k,)
        return shrink.query_heads(kv, group), kv

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """``{"heads": query heads, "kv_heads": key/value heads}`` of the module (and
        ``bias_heads``, the original heads whose per-head bias rows it reads: MPNet)."""
        from theseus_builtin.successors import shrink

        heads, kv_heads, _ = self._anatomy().head_counts(module)
        spec = {"heads": heads, "kv_heads": kv_heads}
        kept = shrink.bias_heads(module, self._anatomy())  # MPNet: its bias rows
        return spec if kept is None else {**spec, "bias_heads": kept}

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """Keep the first ``heads`` query and ``kv_heads`` key/value heads (the saved
        weights then fill them)."""
        from theseus_builtin.successors import shrink

        q, kv = self._first_heads(layer, spec["kv_heads"])
        shrink.keep_heads(layer, self._anatomy(), q, kv)
        if spec.get("bias_heads") is not None:
            shrink.set_bias_heads(layer, self._anatomy(), spec["bias_heads"])
        return layer
