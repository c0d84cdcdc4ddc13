"""Grouping the predecessor's L layers into n modules of L/n consecutive layers
(paper section 3.1): which counts are accepted, and the groups. No torch: the CLI checks
a configuration with it before any work."""

from __future__ import annotations

from theseus_cli.errors import ConfigError


def module_count_error(num_layers: int, num_modules: int, setting: str) -> ConfigError | None:
    """The error for n = ``num_modules`` modules of L = ``num_layers`` layers, or None when
    n fits: module replacing needs 1 <= n <= L and n dividing L (modules of equal size,
    paper section 3.1). ``setting`` names n as the user set it, for the message; the
    message lists the accepted counts (the divisors of L). The one place this rule lives."""
    if 1 <= num_modules <= num_layers and num_layers % num_modules == 0:
        return None
    divisors = [d for d in range(1, num_layers + 1) if num_layers % d == 0]
    return ConfigError(
        f"{setting}: {num_modules} successor layers cannot replace the {num_layers} layers "
        f"of the predecessor in modules of equal size; accepted: {', '.join(map(str, divisors))}")


def group_layers(num_layers: int, num_modules: int) -> list[range]:
    """Split L = ``num_layers`` layer indices into n = ``num_modules`` groups.

    Group i is ``range(i * L/n, (i + 1) * L/n)`` (consecutive layers).

    Raises:
        ConfigError: n < 1, n > L, or n does not divide L; the message lists
            the accepted module counts (the divisors of L).
    """
    if num_layers < 1:
        raise ConfigError(f"the predecessor has {num_layers} layers; need at least 1")
    error = module_count_error(num_layers, num_modules, f"num_modules={num_modules!r}")
    if error is not None:
        raise error
    size = num_layers // num_modules
    return [range(i * size, (i + 1) * size) for i in range(num_modules)]


