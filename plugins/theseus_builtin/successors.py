"""Built-in successor builders (paper section 3.1 and 4.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from theseus_cli.contracts import SuccessorBuilder
from theseus_cli.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


class FirstNBuilder(SuccessorBuilder):
    """Successor module i = a deep copy of predecessor layer i (i < n).

    Paper section 4.3: "use the first 6 layers of BERT-base to initialize the
    successor model"; the official code does the same. Each successor module
    is one layer of the predecessor's layer class, so the assembled successor
    is a stock Hugging Face model with n layers.
    """

    name = "first-n"
    help = "successor module i starts as a copy of predecessor layer i (paper section 4.3)"

    @dataclass
    class Params:
        pass

    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Return n trainable deep copies of predecessor layers 0 .. n-1."""
        import copy

        from torch import nn

        num_layers = len(predecessor_layers)
        if not (1 <= num_modules <= num_layers) or num_layers % num_modules:
            divisors = [d for d in range(1, num_layers + 1) if num_layers % d == 0]
            raise ConfigError(
                f"first-n: num_modules={num_modules!r} cannot split {num_layers} predecessor "
                f"layers; accepted: {', '.join(map(str, divisors))}")
        modules = nn.ModuleList(copy.deepcopy(predecessor_layers[i]) for i in range(num_modules))
        for prm in modules.parameters():
            prm.requires_grad_(True)
        return modules
