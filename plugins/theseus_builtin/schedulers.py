"""Replacing-rate schedulers (paper section 3.3).

``rate(t)`` is the probability p that each module is replaced by its successor
at optimizer step t (0-based; optimizer steps, not micro-batches or epochs).
No torch import here: plugin modules must be cheap to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from theseus_cli.contracts import Scheduler, param
from theseus_cli.errors import ConfigError


def _check_step(step: int) -> int:
    if step < 0:
        raise ValueError(f"optimizer step must be >= 0, got {step!r}")
    return step


def _fmt(x: float) -> str:
    """Plain decimal with 4 significant digits, no exponent: 3e-05 -> '0.00003',
    0.0023333 -> '0.002333'."""
    if x == 0:
        return "0"
    digits = max(0, 3 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


class ConstantScheduler(Scheduler):
    """Constant replacing rate p; optionally p = 1 from step ``replacing_steps``.

    With ``replacing_steps`` set, steps 0 .. replacing_steps-1 use p and every
    later step uses 1 (pure successor), the paper's two-phase schedule of
    figure 2(a): module replacing, then successor fine-tuning.
    """

    name = "constant"
    help = "constant replacing rate p (optionally 1 after replacing_steps optimizer steps)"

    @dataclass
    class Params:
        p: float = param(0.5, "replacing rate: probability each module is replaced per optimizer step",
                         min=0.0, max=1.0)
        replacing_steps: int | None = param(
            None, "optimizer steps after which p becomes 1 (successor only); null = never", min=0)

        def __post_init__(self) -> None:
            if not 0.0 <= self.p <= 1.0:
                raise ConfigError(f"constant scheduler: p={self.p!r} is outside [0, 1]")
            if self.replacing_steps is not None and (
                    isinstance(self.replacing_steps, bool) or not isinstance(self.replacing_steps, int)
                    or self.replacing_steps < 0):
                raise ConfigError(
                    f"constant scheduler: replacing_steps={self.replacing_steps!r} must be an "
                    "integer >= 0 (optimizer steps) or null")

    def rate(self, step: int) -> float:
        """p for steps < replacing_steps (or always, if None), else 1."""
        n = self.params.replacing_steps
        if n is not None and _check_step(step) >= n:
            return 1.0
        return float(self.params.p)

    def describe(self) -> str:
        text = f"p = {_fmt(self.params.p)}"
        if self.params.replacing_steps is not None:
            text += f", p=1 from step {self.params.replacing_steps}"
        return text


class LinearScheduler(Scheduler):
    """Curriculum replacement, eq. 6: ``p_d = min(1, k·t + b)``.

    Set either the slope ``k`` (per optimizer step) or ``steps_to_one``, the
    optimizer step from which p_d = 1, giving k = (1 - b) / steps_to_one.
    An explicit ``k`` overrides ``steps_to_one``. The paper grid-searches b in
    {0.1, 0.3} and steps_to_one in {1000, 5000, 10000, 30000}.
    """

    name = "linear"
    help = "linear curriculum p_d = min(1, k·t + b) (paper eq. 6)"

    @dataclass
    class Params:
        b: float = param(0.3, "basic replacing rate at optimizer step 0", min=0.0, max=1.0)
        k: float | None = param(
            None, "slope per optimizer step; overrides steps_to_one when set")
        steps_to_one: int | None = param(
            1000, "optimizer steps until p_d reaches 1 (k = (1 - b) / steps_to_one)", min=1)

        def __post_init__(self) -> None:
            if not 0.0 <= self.b <= 1.0:
                raise ConfigError(f"linear scheduler: b={self.b!r} is outside [0, 1]")
            if self.k is not None:
                if not self.k > 0:
                    raise ConfigError(f"linear scheduler: k={self.k!r} must be > 0 (eq. 6)")
            elif self.steps_to_one is None:
                raise ConfigError("linear scheduler: set k or steps_to_one (both are null)")
            elif (isinstance(self.steps_to_one, bool) or not isinstance(self.steps_to_one, int)
                  or self.steps_to_one < 1):
                raise ConfigError(
                    f"linear scheduler: steps_to_one={self.steps_to_one!r} must be an integer "
                    ">= 1 (optimizer steps)")

    @property
    def k(self) -> float:
        """Slope per optimizer step."""
        if self.params.k is not None:
            return float(self.params.k)
        return (1.0 - self.params.b) / self.params.steps_to_one

    @property
    def step_at_one(self) -> int:
        """First optimizer step t with p_d = 1."""
        if self.params.k is None:
            return self.params.steps_to_one
        return max(0, math.ceil((1.0 - self.params.b) / self.params.k - 1e-9))

    def rate(self, step: int) -> float:
        """p_d = min(1, k·t + b); exactly 1 from :attr:`step_at_one` on."""
        if _check_step(step) >= self.step_at_one:
            return 1.0
        return min(1.0, self.k * step + self.params.b)

    def describe(self) -> str:
        return (f"p_d = min(1, {_fmt(self.k)}·t + {_fmt(self.params.b)}), "
                f"p=1 from step {self.step_at_one}")
