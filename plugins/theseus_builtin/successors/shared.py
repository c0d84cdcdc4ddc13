"""``shared``: cross-layer parameter sharing (ALBERT, Lan et al. 2020, section 3.1).

The n successor modules hold k sets of layer weights (k = ``sets``, 1 by default, as
ALBERT): the modules are split into k contiguous groups of n/k, and every module of
group g is the same layer object, started as a copy of the predecessor layer that the
first module of the group would copy (``layers``: as ``first-n`` or ``every-other`` pick
them). Module replacing routes each module as usual; a shared layer learns from every
place it runs. The successor keeps the sharing: its parameters are counted once and
saved once (``theseus_successor.json`` names which layer repeats which; the theseus
loader ties them again).

No torch at module level (plugin modules must be cheap to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from theseus_builtin.successors.copy_layers import CopyLayersBuilder, renumber
from theseus_builtin.successors.shrinking import COPY_SOURCES, ShrinkParams
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import param

if TYPE_CHECKING:
    from torch import nn


class SharedLayersBuilder(CopyLayersBuilder):
    """k sets of layer weights shared by the n successor modules (ALBERT-style)."""

    name = "shared"
    help = ("cross-layer parameter sharing (ALBERT): the n successor modules share k sets of "
            "layer weights (sets, default 1), counted and saved once")

    @dataclass
    class Params(ShrinkParams):
        builder_name: ClassVar[str] = "shared"
        sets: int = param(1, "k: distinct sets of layer weights; the n modules form k contiguous "
                             "groups of n/k that share one (1: every module shares one layer, "
                             "as ALBERT)", min=1)

    def source_layers(self, num_layers: int, num_modules: int) -> list[int]:
        """The predecessor layer each weight set starts from: the one the first module of
        its group would copy (``layers``).

        Raises:
            ConfigError: k does not divide n (lists the divisors).
        """
        super().source_layers(num_layers, num_modules)  # validates n
        k = self.params.sets
        if not 1 <= k <= num_modules or num_modules % k:
            divisors = [d for d in range(1, num_modules + 1) if num_modules % d == 0]
            raise ConfigError(f"shared: sets={k} cannot split {num_modules} successor modules "
                              f"into equal groups; accepted: {', '.join(map(str, divisors))}")
        pick, size = COPY_SOURCES[self.params.layers], num_modules // k
        return [pick(g * size, num_layers, num_modules) for g in range(k)]

    @staticmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:  # replaced above
        return i

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """n modules, module i the same object as every other module of its group.

        Raises:
            ConfigError: a group would share layers of different kinds (another class, or
                another attention type: ModernBERT's global and sliding layers).
        """
        import copy

        from torch import nn

        picks = self.source_layers(len(predecessor_layers), num_modules)
        size = num_modules // len(picks)
        pick = COPY_SOURCES[self.params.layers]
        for g in range(len(picks)):
            group = [pick(i, len(predecessor_layers), num_modules)
                     for i in range(g * size, (g + 1) * size)]
            kinds = {(type(predecessor_layers[j]).__name__,
                      getattr(predecessor_layers[j], "attention_type", None)) for j in group}
            if len(kinds) > 1:
                raise ConfigError(
                    f"shared: the modules of group {g + 1} stand for predecessor layers of "
                    f"different kinds ({', '.join(sorted(str(k) for k in kinds))}); one set of "
                    "weights cannot be both. Use more sets (--successor-arg sets=N) so that "
                    "each group holds one kind")
        sets = renumber(nn.ModuleList(copy.deepcopy(predecessor_layers[j]) for j in picks))
        for g, layer in enumerate(sets):  # the KV-cache slot of its first application
            for sub in layer.modules():
                if isinstance(getattr(sub, "layer_idx", None), int):
                    sub.layer_idx = g * size
        sets.requires_grad_(True)
        return nn.ModuleList(sets[i // size] for i in range(num_modules))
