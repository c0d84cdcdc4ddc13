"""One successor module at a time in the predecessor (paper section 5.1, Table 5): the
predecessor with the chosen modules prd_i replaced by the trained successor modules
scc_i, every other module the predecessor's own layers."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from theseus_cli.errors import ConfigError
from theseus_cli.plugin.registry import family_of


def parse_modules(text: str, setting: str) -> list[int]:
    """``"1,3"`` -> ``[1, 3]``: 1-based module numbers, each once, ascending.

    Raises:
        ConfigError: not a comma-separated list of positive integers (``setting``, the
            option as the user gave it, named).
    """
    try:
        numbers = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        numbers = []
    if not numbers or numbers[0] < 1:
        raise ConfigError(f"{setting}: give module numbers from 1, comma-separated (e.g. 1 "
                          "or 1,3)")
    return numbers


def swap_in(predecessor: Any, successor: Any, modules: Sequence[int]) -> Any:
    """A new model: ``predecessor`` whose modules ``modules`` (1-based; module i groups the
    predecessor's layers ``[(i-1)·L/n, i·L/n)``) run the successor's layer i instead
    (prd_i -> scc_i); embeddings, other layers and the head are the predecessor's.

    Args:
        predecessor: the fine-tuned teacher, L layers.
        successor: its successor, n layers of the predecessor's layer class (``first-n``,
            ``every-other``, or fine-tuned copies), n dividing L.

    Returns:
        A model of the predecessor's class with L − k·(L/n − 1) layers (k = ``len(modules)``).

    Raises:
        ConfigError: a module number outside 1..n (the accepted range named), n not dividing
            L, or successor layers of another class or shape than the predecessor's.
    """
    family = family_of(predecessor)
    ours, theirs = family.layers(predecessor), family.layers(successor)
    total, n = len(ours), len(theirs)
    if n < 1 or total % n:
        raise ConfigError(f"--modules: a successor of {n} layers does not group the "
                          f"predecessor's {total} layers into modules of equal size")
    bad = [m for m in modules if not 1 <= m <= n]
    if bad:
        raise ConfigError(f"--modules: {', '.join(map(str, bad))}: the successor has {n} "
                          f"modules; accepted: 1 to {n}")
    shapes = [tuple(p.shape) for p in ours[0].parameters()]
    for layer in theirs:
        if type(layer) is not type(ours[0]) or [tuple(p.shape) for p in layer.parameters()] \
                != shapes:
            raise ConfigError("--modules: the successor's layers are not of the predecessor's "
                              f"layer class and shape ({type(layer).__name__}); swapping single "
                              "modules needs a successor of copied layers (first-n, every-other)")
    size = total // n
    layers: list[Any] = []
    for i in range(n):
        if i + 1 in modules:
            layers.append(copy.deepcopy(theirs[i]))
        else:
            layers += [copy.deepcopy(layer) for layer in ours[i * size:(i + 1) * size]]
    return family.build_successor(predecessor, layers).eval()
