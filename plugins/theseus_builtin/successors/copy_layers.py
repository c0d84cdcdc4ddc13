"""Built-in successor builders (paper section 3.1 and 4.3).

Both builders initialise successor module i as a deep copy of one predecessor
layer; they differ only in which layer. No torch import at module level:
plugin modules must be cheap to import.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from theseus_cli.errors import ConfigError
from theseus_cli.plugin import SuccessorBuilder, param

if TYPE_CHECKING:
    from torch import nn

INIT_SOURCES = ("teacher", "pretrained")


@dataclass
class CopyLayersParams:
    """Settings shared by the layer-copying builders (``first-n``, ``every-other``)."""

    builder_name: ClassVar[str] = "first-n"

    init_from: str = param(
        "teacher", "layers copied: teacher (fine-tuned predecessor, official code) or "
                   "pretrained (before task fine-tuning, paper section 4.3)", choices=INIT_SOURCES)

    def __post_init__(self) -> None:
        if self.init_from not in INIT_SOURCES:
            raise ConfigError(f"{self.builder_name}: init_from={self.init_from!r} is invalid; "
                              f"accepted: {', '.join(INIT_SOURCES)}")


def renumber(modules: nn.ModuleList) -> nn.ModuleList:
    """Set every ``layer_idx`` attribute inside module i (e.g. the KV-cache slot of
    ``BertSelfAttention`` or ``LlamaAttention``) to i, its index in the successor."""
    for i, module in enumerate(modules):
        for sub in module.modules():
            if isinstance(getattr(sub, "layer_idx", None), int):
                sub.layer_idx = i
    return modules


class CopyLayersBuilder(SuccessorBuilder):
    """Common code: successor module i = a trainable deep copy of predecessor layer
    :meth:`source_layer` (i, L, n), for L predecessor layers and n modules.

    Each copy is an instance of the predecessor's layer class, so the assembled
    successor (eq. 5) is a stock Hugging Face model with n layers; it shares no
    storage with the source layers, and its ``layer_idx`` attributes (where the
    layer class has them) are renumbered to i, its index in the successor.
    """

    @property
    def init_source(self) -> str:
        """``init_from``: ``"teacher"`` or ``"pretrained"``."""
        return self.params.init_from

    @staticmethod
    @abstractmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:
        """Index (0-based) of the predecessor layer that successor module ``i`` copies."""

    def source_layers(self, num_layers: int, num_modules: int) -> list[int]:
        """Predecessor layer copied by each successor module, in module order.

        Raises:
            ConfigError: ``num_modules`` does not divide ``num_layers`` (lists the divisors).
        """
        if (isinstance(num_modules, bool) or not isinstance(num_modules, int)
                or not 1 <= num_modules <= num_layers or num_layers % num_modules):
            divisors = [d for d in range(1, num_layers + 1) if num_layers % d == 0]
            raise ConfigError(
                f"{self.name}: num_modules={num_modules!r} cannot split {num_layers} predecessor "
                f"layers; accepted: {', '.join(map(str, divisors))}")
        return [self.source_layer(i, num_layers, num_modules) for i in range(num_modules)]

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Return n trainable deep copies of the layers :meth:`source_layers` picks."""
        import copy

        from torch import nn

        picks = self.source_layers(len(predecessor_layers), num_modules)
        modules = renumber(nn.ModuleList(copy.deepcopy(predecessor_layers[j]) for j in picks))
        for prm in modules.parameters():
            prm.requires_grad_(True)
        return modules


class FirstNBuilder(CopyLayersBuilder):
    """Successor module i = a deep copy of predecessor layer i (i < n).

    Paper section 4.3: "use the first 6 layers of BERT-base to initialize the
    successor model"; the official code does the same, from the fine-tuned
    teacher's layers (``init_from: teacher``, the default); ``init_from:
    pretrained`` copies the predecessor's layers before task fine-tuning.
    """

    name = "first-n"
    help = "successor module i starts as a copy of predecessor layer i (paper section 4.3)"
    Params = CopyLayersParams

    @staticmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:
        """Layer i."""
        return i


class EveryOtherBuilder(CopyLayersBuilder):
    """Successor module i = a deep copy of the top layer of predecessor group i.

    Group i holds layers i·L/n .. (i+1)·L/n − 1 (paper section 3.1); its top
    layer is (i+1)·L/n − 1, e.g. layers 1, 3, 5 of L = 6 for n = 3: every other
    layer when each module groups two, as DistilBERT (Sanh et al., 2019)
    initialises its student. ``init_from`` as for ``first-n``.
    """

    name = "every-other"
    help = ("successor module i starts as a copy of the top layer of predecessor group i, "
            "layer (i+1)·L/n − 1 (DistilBERT-style)")

    @dataclass
    class Params(CopyLayersParams):
        builder_name: ClassVar[str] = "every-other"

    @staticmethod
    def source_layer(i: int, num_layers: int, num_modules: int) -> int:
        """Layer (i+1)·L/n − 1, the top layer of group i."""
        return (i + 1) * (num_layers // num_modules) - 1
