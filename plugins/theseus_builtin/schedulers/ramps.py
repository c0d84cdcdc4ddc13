"""Replacing-rate schedulers (paper section 3.3; anti-curriculum: section 5.3).

``rate(t)`` is the probability p that each module is replaced by its successor
at optimizer step t (0-based; optimizer steps, not micro-batches or epochs).
No torch import here: plugin modules must be cheap to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from theseus_cli.errors import ConfigError
from theseus_cli.plugin import Scheduler, param


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


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: where eq. 6's p_d reaches 1 when no slope is set: 65% of the stage's optimizer steps
#: (the embedded recipe's step 300 of MRPC's 460 replace steps, chosen on real MRPC:
#: runs/recipe-sweep-mrpc.sh), whatever the dataset's size
DEFAULT_FRACTION_TO_ONE = 0.65


@dataclass
class RampParams:
    """Settings of eq. 6, ``p_d = min(1, k·t + b)``, shared by the ``linear`` and
    ``anti-curriculum`` schedulers.

    The slope comes from the first of these that is set: ``k`` (per optimizer
    step), then ``fraction_to_one`` (resolved in ``Scheduler.bind`` from the stage's
    planned optimizer steps), then ``steps_to_one``. With all three null (the default),
    ``fraction_to_one`` is :data:`DEFAULT_FRACTION_TO_ONE`, so the curriculum reaches
    p = 1 on a large and a small dataset alike; workspaces written before this default
    name ``steps_to_one`` (then 1000) explicitly and keep it.
    """

    scheduler_name: ClassVar[str] = "linear"

    b: float = param(0.3, "basic replacing rate b: p_d at optimizer step 0 (eq. 6)",
                     min=0.0, max=1.0)
    k: float | None = param(
        None, "slope of p_d per optimizer step; overrides fraction_to_one and steps_to_one")
    fraction_to_one: float | None = param(
        None, "fraction in (0, 1] of the stage's optimizer steps at which p_d reaches 1; "
              "overrides steps_to_one; k, fraction_to_one and steps_to_one all null: 0.65")
    steps_to_one: int | None = param(
        None, "optimizer steps until p_d reaches 1 (k = (1 - b) / steps_to_one)", min=1)

    def __post_init__(self) -> None:
        who = f"{self.scheduler_name} scheduler"
        if isinstance(self.b, bool) or not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"{who}: b={self.b!r} is outside [0, 1]")
        if self.k is not None and (isinstance(self.k, bool) or not self.k > 0):
            raise ConfigError(f"{who}: k={self.k!r} must be > 0 (eq. 6)")
        f = self.fraction_to_one
        if f is not None and (isinstance(f, bool) or not 0.0 < f <= 1.0):
            raise ConfigError(
                f"{who}: fraction_to_one={f!r} is outside (0, 1] (a fraction of the stage's "
                "optimizer steps)")
        if self.steps_to_one is not None and (not _is_int(self.steps_to_one)
                                              or self.steps_to_one < 1):
            raise ConfigError(
                f"{who}: steps_to_one={self.steps_to_one!r} must be an integer >= 1 "
                "(optimizer steps)")
        if self.k is None and f is None and self.steps_to_one is None:
            self.fraction_to_one = DEFAULT_FRACTION_TO_ONE


class LinearRampScheduler(Scheduler):
    """Common code of the schedulers built on eq. 6, ``p_d = min(1, k·t + b)``.

    Resolves the slope (k > fraction_to_one > steps_to_one, see
    :class:`RampParams`), the first optimizer step with p_d = 1 and the
    :meth:`describe` line. Subclasses define :meth:`rate` from :meth:`p_d`.
    """

    #: for :meth:`describe`: the rate as a template of slope {k} and b, and the rate once p_d = 1
    formula: ClassVar[str] = "p_d = min(1, {k}·t + {b})"
    rate_at_one: ClassVar[str] = "p=1"

    def __init__(self, params: RampParams):
        super().__init__(params)
        self.total_steps: int | None = None  # the stage's optimizer steps, from bind()

    def bind(self, total_steps: int) -> None:
        """Record the stage's planned optimizer steps; ``fraction_to_one`` resolves against it."""
        if not _is_int(total_steps) or total_steps < 0:
            raise ValueError(f"total_steps must be an integer >= 0 (optimizer steps), "
                             f"got {total_steps!r}")
        self.total_steps = total_steps

    @property
    def uses_fraction(self) -> bool:
        """Whether the slope comes from ``fraction_to_one`` (no explicit k)."""
        return self.params.k is None and self.params.fraction_to_one is not None

    @property
    def steps_to_one(self) -> int | None:
        """Optimizer steps until p_d = 1 from fraction_to_one or steps_to_one (None if k is set).

        Raises:
            RuntimeError: fraction_to_one is in use and :meth:`bind` was not called.
        """
        if self.params.k is not None:
            return None
        if self.params.fraction_to_one is None:
            return self.params.steps_to_one
        if self.total_steps is None:
            raise RuntimeError(
                f"{self.name} scheduler: fraction_to_one={self.params.fraction_to_one} needs the "
                "stage's number of optimizer steps; call bind(total_steps) before rate()")
        return max(1, round(self.params.fraction_to_one * self.total_steps))

    @property
    def k(self) -> float:
        """Slope of p_d per optimizer step."""
        if self.params.k is not None:
            return float(self.params.k)
        return (1.0 - self.params.b) / self.steps_to_one

    @property
    def step_at_one(self) -> int:
        """First optimizer step t with p_d = 1."""
        if self.params.k is None:
            return self.steps_to_one
        return max(0, math.ceil((1.0 - self.params.b) / self.params.k - 1e-9))

    def warnings(self, total_steps: int) -> list[str]:
        """The ramp's end (``rate_at_one``, at :attr:`step_at_one`) after the run's last step."""
        if total_steps < 1 or self.step_at_one <= total_steps - 1:
            return []
        setting = (f"k={self.params.k:g}" if self.params.k is not None else
                   f"fraction_to_one={self.params.fraction_to_one:g}"
                   if self.params.fraction_to_one is not None else
                   f"steps_to_one={self.params.steps_to_one}")
        last = self.rate(total_steps - 1)
        return [f"scheduler {self.name} {setting}: {self.rate_at_one} only from optimizer step "
                f"{self.step_at_one}, after the {total_steps} steps of this run; p stops at "
                f"{last:.2f} (set steps_to_one below {total_steps}, or fraction_to_one)"]

    def p_d(self, step: int) -> float:
        """Eq. 6, p_d = min(1, k·t + b) at optimizer step t; exactly 1 from :attr:`step_at_one`."""
        if _check_step(step) >= self.step_at_one:
            return 1.0
        return min(1.0, self.k * step + self.params.b)

    def describe(self) -> str:
        """E.g. ``p_d = min(1, 0.002333·t + 0.3), p=1 from step 300 (60% of 500 steps)``."""
        b = _fmt(self.params.b)
        if self.uses_fraction and self.total_steps is None:
            percent = _fmt(100 * self.params.fraction_to_one)
            return (f"{self.formula.format(k='k', b=b)}, {self.rate_at_one} from {percent}% of "
                    "the stage's optimizer steps (not yet bound)")
        line = (f"{self.formula.format(k=_fmt(self.k), b=b)}, "
                f"{self.rate_at_one} from step {self.step_at_one}")
        if self.uses_fraction:
            line += f" ({_fmt(100 * self.params.fraction_to_one)}% of {self.total_steps} steps)"
        return line


class LinearScheduler(LinearRampScheduler):
    """Curriculum replacement, eq. 6 (paper section 3.3): ``p_d = min(1, k·t + b)``.

    Set the slope ``k`` (per optimizer step), or ``fraction_to_one``, the
    fraction of the stage's optimizer steps at which p_d reaches 1, or
    ``steps_to_one``, the optimizer step from which p_d = 1, giving
    k = (1 - b) / steps_to_one; precedence k > fraction_to_one > steps_to_one.
    The paper (section 4.3) grid-searches b in {0.1, 0.3} and steps_to_one in
    {1000, 5000, 10000, 30000}.
    """

    name = "linear"
    help = "linear curriculum p_d = min(1, k·t + b) (paper eq. 6)"
    Params = RampParams

    def rate(self, step: int) -> float:
        """p_d = min(1, k·t + b); exactly 1 from :attr:`step_at_one` on."""
        return self.p_d(step)


class AntiCurriculumScheduler(LinearRampScheduler):
    """Anti-curriculum baseline, paper section 5.3 (Table 6): rate ``p = 1 − p_d``.

    p_d is eq. 6 with the same parameters and resolution as ``linear`` (b, k,
    fraction_to_one, steps_to_one), so the rate starts at 1 − b and falls to 0
    at the optimizer step where the curriculum's p_d reaches 1: hard to easy.
    The paper uses it to show that curriculum replacement helps because of its
    easy-to-hard order, not merely because the rate varies.
    """

    name = "anti-curriculum"
    help = "anti-curriculum baseline p = 1 − min(1, k·t + b) (paper section 5.3, Table 6)"
    formula = "p = 1 − min(1, {k}·t + {b})"
    rate_at_one = "p=0"

    @dataclass
    class Params(RampParams):
        scheduler_name: ClassVar[str] = "anti-curriculum"

    def rate(self, step: int) -> float:
        """1 − p_d; exactly 0 from :attr:`step_at_one` on."""
        return 1.0 - self.p_d(step)
