"""``compose``: several shrinking successor types on every module, one after the other
(ROSITA's recipe, Liu et al. 2021: fewer heads, a narrower feed-forward block and low-rank
maps, on top of fewer layers; a compressed embedding is ``replace --embedding-rank``).

The types apply in one order, whatever order they are named in: ``head-pruned`` (the
most important heads on calibration batches of the teacher), then ``narrow-ffn`` (the most
important neurons by weight), then ``low-rank`` (the truncated SVD of every linear map
that is left, which must come last: the others select rows and columns of plain linear
maps). Each keeps its own settings (``head_fraction``, ``ffn_fraction``, ``rank`` /
``energy`` / ``rank_fraction``), and the successor is saved with one spec per type, read
back by the theseus loader in the same order.

No torch at module level (plugin modules must be cheap to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from theseus_builtin.successors.copy_layers import CopyLayersBuilder
from theseus_builtin.successors.shrinking import (
    COPY_SOURCES,
    HeadPrunedBuilder,
    LowRankBuilder,
    NarrowFfnBuilder,
    ShrinkParams,
)
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import param

if TYPE_CHECKING:
    from torch import nn

#: the types that compose, in the order they apply
ORDER = {"head-pruned": HeadPrunedBuilder, "narrow-ffn": NarrowFfnBuilder,
         "low-rank": LowRankBuilder}
#: types that change more than a layer's maps, and why they do not compose here
NOT_COMPOSABLE = {"narrow-hidden": "it wraps each layer between projections to a smaller "
                                   "hidden size",
                  "shared": "one set of weights serves several modules",
                  "first-n": "it is the plain copy every type starts from",
                  "every-other": "it is a choice of layers (give layers=every-other)"}


def parse_types(text: str) -> list[str]:
    """``"low-rank,head-pruned"`` -> ``["head-pruned", "low-rank"]`` (the order they apply);
    ``+`` separates them too (``low-rank+head-pruned``: one value in a sweep's list).

    Raises:
        ConfigError: an empty list, a type named twice, one that does not compose (says
            why) or an unknown one (lists those that compose).
    """
    names = [t.strip() for t in str(text).replace("+", ",").split(",") if t.strip()]
    for name in names:
        if name in NOT_COMPOSABLE:
            raise ConfigError(f"compose: types={text!r}: {name} cannot be combined with other "
                              f"types ({NOT_COMPOSABLE[name]}); accepted: {', '.join(ORDER)}")
        if name not in ORDER:
            raise ConfigError(f"compose: types={text!r}: unknown type {name!r}; accepted: "
                              f"{', '.join(ORDER)}")
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"compose: types={text!r}: name each of {', '.join(ORDER)} at most "
                          "once, at least one of them")
    return [n for n in ORDER if n in names]


class ComposedBuilder(CopyLayersBuilder):
    """Copies of the chosen layers shrunk by several types in turn."""

    name = "compose"
    help = ("several shrinking types on every module, in the order head-pruned, narrow-ffn, "
            "low-rank (ROSITA-style; each with its own setting)")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "compose"
        fractions: ClassVar[tuple[str, ...]] = ("head_fraction", "ffn_fraction")
        types: str = param("head-pruned,narrow-ffn,low-rank", "the types to apply, separated by "
                                                               "commas or + (head-pruned, "
                                                               "narrow-ffn, low-rank)")
        head_fraction: float = param(0.5, "head-pruned: fraction of each layer's attention heads "
                                          "kept", min=0.0, max=1.0)
        calibration_batches: int = param(8, "head-pruned: training batches the head importance "
                                            "is measured on", min=1)
        ffn_fraction: float = param(0.5, "narrow-ffn: fraction of each layer's feed-forward "
                                         "neurons kept", min=0.0, max=1.0)
        rank: int | None = param(None, "low-rank: rank of every factorised map; null: energy or "
                                        "rank_fraction", min=1)
        energy: float | None = param(None, "low-rank: the smallest rank whose singular values "
                                            "hold this fraction of sum(s²)", min=0.0, max=1.0)
        rank_fraction: float = param(1 / 3, "low-rank: rank = ceil(fraction · min(in, out)) "
                                            "when neither rank nor energy is set",
                                     min=0.0, max=1.0)

        def __post_init__(self) -> None:
            super().__post_init__()
            parse_types(self.types)

    def _parts(self) -> dict[str, Any]:
        """The composed builders (type -> builder), with this one's family, calibration and
        settings (each takes the fields its own Params has)."""
        import dataclasses

        mine = dataclasses.asdict(self.params)
        parts = {}
        for name in parse_types(self.params.types):
            cls = ORDER[name]
            fields = {f.name for f in dataclasses.fields(cls.Params)}
            part = cls(cls.Params(**{k: v for k, v in mine.items() if k in fields}))
            part.family, part.calibration = self.family, self.calibration
            parts[name] = part
        return parts

    def calibration_batches(self) -> int:
        return int(self.params.calibration_batches) if "head-pruned" in self._parts() else 0

    def source_layers(self, num_layers: int, num_modules: int) -> list[int]:
        """As ``first-n`` or ``every-other`` (``layers``) picks them."""
        super().source_layers(num_layers, num_modules)  # validates n
        pick = COPY_SOURCES[self.params.layers]
        return [pick(i, num_layers, num_modules) for i in range(num_modules)]

    @staticmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:  # replaced above
        return i

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Copies of the chosen layers, each shrunk by every type in turn."""
        parts = self._parts()
        if "head-pruned" in parts:  # copies with the heads of their source layers kept
            modules = parts["head-pruned"].build(predecessor_layers, num_modules)
        else:
            modules = CopyLayersBuilder.build(self, predecessor_layers, num_modules)
        for name in ("narrow-ffn", "low-rank"):
            if name in parts:
                for module in modules:
                    parts[name].shrink(module)
        for part in parts.values():
            for w in part.warnings:
                self.warn(w)
        modules.requires_grad_(True)
        return modules

    def config_updates(self, modules: Sequence[nn.Module]) -> dict[str, Any]:
        """The composed types' config changes (narrow-ffn's intermediate size)."""
        out: dict[str, Any] = {}
        for part in self._parts().values():
            out.update(part.config_updates(modules))
        return out

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """``{type: that type's spec}`` for the types whose spec says something."""
        specs = {name: spec for name, part in self._parts().items()
                 if (spec := part.layer_spec(module)) is not None}
        return specs or None

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """Each type's restructuring, in the order the types apply."""
        for name, part in self._parts().items():
            if name in spec:
                layer = part.restructure(layer, spec[name])
        return layer
