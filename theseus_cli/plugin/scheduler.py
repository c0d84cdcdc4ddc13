"""The scheduler contract: the replacing rate p of module replacing, per optimizer step
(paper section 3.3, eq. 6). Entry-point group ``theseus.schedulers``."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any

from theseus_cli.plugin.base import Plugin


class Scheduler(Plugin, ABC):
    """Replacing-rate scheduler: the probability p that a module is replaced.

    ``rate(t)`` is called once per optimizer step ``t`` (0-based, counted in
    optimizer steps, not micro-batches or epochs) and must return a value in
    [0, 1]. Paper: section 3.3 (eq. 6) for the curriculum scheduler.
    """

    def __init__(self, params: Any):
        self.params = params

    @abstractmethod
    def rate(self, step: int) -> float:
        """Replacing rate p_d at optimizer step ``step`` (0-based), in [0, 1]."""

    def bind(self, total_steps: int) -> None:
        """Learn the stage's planned number of optimizer steps, once, before the first
        :meth:`rate` call (e.g. to reach p = 1 at a fraction of training). Default: nothing.

        Raises:
            ConfigError: the scheduler's params cannot work with ``total_steps``.
        """

    def warnings(self, total_steps: int) -> list[str]:
        """Settings that do nothing over a run of ``total_steps`` optimizer steps (called
        after :meth:`bind`), one line each naming the setting and what happens instead
        (a ramp that never reaches its end within the run). ``replace`` shows them and
        records them in its manifest. Default: none."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """State beyond ``params`` that ``rate`` depends on, saved in training
        checkpoints (plain Python values and tensors). Default: none, for a
        scheduler whose rate is a function of the step only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes. Default: nothing."""

    def describe(self) -> str:
        """One human-readable line, e.g. ``p_d = min(1, 0.0006·t + 0.3)``."""
        return f"{self.name}({dataclasses.asdict(self.params)})"
