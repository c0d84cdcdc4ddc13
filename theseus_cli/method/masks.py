"""The replacing-rate side of module replacing (BERT-of-Theseus, Xu et al. 2020, eq. 2):
per optimizer step, the scheduler's p, then one Bernoulli draw per module.

    r_i ~ Bernoulli(p)                                    (eq. 2)

The draw depends only on (seed, step), so every process of a distributed run draws the
same mask and a resumed run redraws it (:func:`draw_replacement_mask`). The routing
itself (which branch each module runs) is :mod:`theseus_cli.method.replacing`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from theseus_cli.errors import CheckpointError, ConfigError, PluginError
from theseus_cli.store import jsonio

# ------------------------------------------------------------------ masks --

def _generator_seed(seed: int, step: int) -> int:
    """Mix (seed, step) into a 63-bit generator seed (same on every process)."""
    raw = (seed * 1_000_003 + step).to_bytes(16, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little") >> 1


def draw_replacement_mask(p: float, num_modules: int, seed: int, step: int) -> torch.Tensor:
    """Draw r_1 .. r_n ~ Bernoulli(p) independently (eq. 2) for one optimizer step.

    The draw depends only on (seed, step): all processes of a distributed run
    draw the same mask, and a resumed run redraws identical masks. ``step`` is
    the 0-based optimizer step (not micro-batch, not epoch); the paper samples
    r once per training batch.

    Returns:
        BoolTensor of shape (num_modules,) on CPU; True = module replaced by
        its successor (r = 1). p = 0 gives all False, p = 1 all True.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"replacing rate p={p!r} is outside [0, 1]")
    if num_modules < 1:
        raise ConfigError(f"num_modules={num_modules!r} must be at least 1")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(_generator_seed(int(seed), int(step)))
    u = torch.rand(num_modules, generator=gen)  # (n,) uniform in [0, 1)
    return u < p


MASK_DEBUG_ENV = "THESEUS_DEBUG_MASK_DIR"


def scheduler_rate(scheduler: Any, t: int) -> float:
    """``scheduler.rate(t)``, checked to be a finite number in [0, 1].

    Raises:
        PluginError: names the scheduler plugin, the optimizer step and the value.
    """
    import math

    name = getattr(scheduler, "name", type(scheduler).__name__)
    try:
        p = scheduler.rate(t)
    except Exception as e:  # noqa: BLE001 - a third-party plugin may raise anything
        raise PluginError(f"scheduler {name!r} failed at optimizer step {t}: "
                          f"{type(e).__name__}: {e}") from e
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) \
            or not 0.0 <= p <= 1.0:
        raise PluginError(f"scheduler {name!r} returned rate {p!r} at optimizer step {t}; "
                          "a replacing rate must be a number in [0, 1] (contract: "
                          "theseus_cli.plugin.Scheduler.rate)")
    return float(p)


class ReplacingSchedule:
    """Per optimizer step: the scheduler's p, then the module mask (eq. 2) for the router.

    Used as ``train(before_step=schedule.before_step, extra_state=schedule)``.
    The mask of step t depends only on (seed, t) (:func:`draw_replacement_mask`),
    so all processes draw the same mask and a resumed run redraws it; the
    scheduler's own state (if any) is saved in checkpoints.

    Debugging: when the environment variable ``THESEUS_DEBUG_MASK_DIR`` names a
    directory, every process appends ``{"step", "p", "mask", "rank"}`` per
    optimizer step to ``masks-rank<k>.jsonl`` there (off by default).

    Args:
        scheduler: a ``theseus_cli.plugin.Scheduler``.
        router: the hybrid's :class:`~theseus_cli.method.replacing.ModuleRouter`
            (:func:`~theseus_cli.method.replacing.router_of`).
        seed: the run seed.
        rank: this process's index (names the debug file).
    """

    def __init__(self, scheduler: Any, router: Any, seed: int, rank: int = 0):
        import os

        self.scheduler, self.router, self.seed, self.rank = scheduler, router, int(seed), rank
        debug = os.environ.get(MASK_DEBUG_ENV)
        self.debug_file = None
        if debug:
            from pathlib import Path

            Path(debug).mkdir(parents=True, exist_ok=True)
            self.debug_file = Path(debug) / f"masks-rank{rank}.jsonl"

    def before_training(self, total_steps: int) -> None:
        """Tell the scheduler the stage's planned optimizer steps (``Scheduler.bind``)."""
        self.scheduler.bind(total_steps)

    def before_step(self, t: int) -> dict[str, Any]:
        """Set the mask of optimizer step ``t`` (0-based); return what to log.

        ``grad_path`` is False when every module drew its frozen predecessor.

        Raises:
            PluginError: the scheduler plugin raised, or returned a rate that is
                not a number in [0, 1] (names the plugin and the step).
        """
        p = scheduler_rate(self.scheduler, t)
        mask = draw_replacement_mask(p, self.router.num_draws, self.seed, t)  # (n [+1],) bool
        self.router.set_replacement_mask(mask)
        bits = [int(r) for r in mask.tolist()]
        if self.debug_file is not None:
            with open(self.debug_file, "a", encoding="utf-8") as f:
                f.write(jsonio.dumps({"step": t, "p": p, "mask": bits, "rank": self.rank}) + "\n")
        return {"p": p, "mask": bits, "grad_path": any(bits)}

    def state_dict(self) -> dict[str, Any]:
        """Scheduler state and the mask generator's identity (seed, modules)."""
        return {"scheduler": type(self.scheduler).__name__,
                "scheduler_state": self.scheduler.state_dict(),
                "mask_generator": {"kind": "blake2b(seed, step) -> torch.Generator",
                                   "seed": self.seed, "num_modules": self.router.num_draws}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the scheduler state; check the masks would be the same.

        Raises:
            CheckpointError: the checkpoint used another seed or module count.
        """
        gen = state["mask_generator"]
        if (gen["seed"], gen["num_modules"]) != (self.seed, self.router.num_draws):
            raise CheckpointError(
                f"checkpoint drew masks with seed {gen['seed']} over {gen['num_modules']} modules, "
                f"this run uses seed {self.seed} over {self.router.num_draws}; rerun with "
                "--restart to start over")
        self.scheduler.load_state_dict(state["scheduler_state"])
