"""Atomic training checkpoints of an in-progress stage run, for resume.

Layout (beside the run's staging directory, never inside a published version)::

    artifacts/<task>/<stage>/.checkpoints-<fingerprint[:16]>/<phase>/
        LATEST                  # name of the newest complete checkpoint
        step-000000400/
            state.pt            # trainable weights, optimizer, LR scheduler,
                                # loss scaler, loop position, best dev score and
                                # weights, stage extras (replacing scheduler)
            rng-rank<k>.pt      # Python, NumPy, torch (and CUDA) RNG states of process k
            metrics.jsonl       # the run's metrics log up to this step
            meta.json           # human-readable summary (step, epoch, processes)

A checkpoint is written into ``.tmp-step-...`` by every process (each its RNG
file, the main process the rest), renamed into place, and only then named in
``LATEST`` (written to a temporary file and ``os.replace``d), so a kill at any
moment leaves the previous checkpoint intact. Tensors are saved with
``torch.save`` of plain containers and read back with
``torch.load(..., weights_only=True)`` only. All processes must see the same
filesystem (true on one machine).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from theseus_cli.errors import CheckpointError
from theseus_cli.store import jsonio

FORMAT = "theseus-checkpoint-v1"
LATEST = "LATEST"


def plain(obj: Any) -> Any:
    """``obj`` with NumPy scalars/arrays turned into Python numbers/lists
    (so that ``torch.load(weights_only=True)`` accepts it); tensors kept."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def capture_rng() -> dict[str, Any]:
    """Every RNG state of this process: Python, NumPy, torch CPU and CUDA."""
    import numpy as np
    import torch

    py = random.getstate()
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": [py[0], list(py[1]), py[2]],
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the RNG states captured by :func:`capture_rng`."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save(obj: Any, path: Path) -> None:
    import torch

    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, foreign content
        raise CheckpointError(f"checkpoint file {path} cannot be read ({e}); rerun with "
                              "--restart to discard the checkpoint and start over") from None


@dataclass
class Loaded:
    """A checkpoint read back by :meth:`Checkpointer.load`.

    Attributes:
        path: its directory.
        step: the optimizer step it was taken after.
        state: the main state (``state.pt``).
        rng: this process's RNG states.
        log: its copy of ``metrics.jsonl`` (None if the run had not logged yet).
    """

    path: Path
    step: int
    state: dict[str, Any]
    rng: dict[str, Any]
    log: Path | None


class Checkpointer:
    """The checkpoints of one in-progress run (one stage, one task, one fingerprint).

    Args:
        root: ``.checkpoints-<fp16>`` directory (shared by all processes).
        label: ``"MRPC/replace"``, for messages.
    """

    def __init__(self, root: Path, label: str):
        self.root, self.label = Path(root), label

    def _dir(self, phase: str) -> Path:
        return self.root / phase.replace("/", "_")

    def exists(self) -> bool:
        """Whether any phase has a complete checkpoint."""
        return any((p / LATEST).is_file() for p in self.root.glob("*")) if self.root.is_dir() else False

    def save(self, phase: str, step: int, runtime: Any, state: dict[str, Any],
             log_file: Path | None, meta: dict[str, Any]) -> Path:
        """Write a checkpoint atomically; every process must call it (collective).

        Args:
            state: the main state (main process only; ignored elsewhere).
            log_file: the run's ``metrics.jsonl`` to copy (main process).
            meta: extra fields for ``meta.json``.

        Returns:
            The checkpoint directory.
        """
        d = self._dir(phase)
        name = f"step-{step:09d}"
        tmp, final = d / f".tmp-{name}", d / name
        main = runtime.is_main_process
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        runtime.wait()
        _save(capture_rng(), tmp / f"rng-rank{runtime.process_index}.pt")
        if main:
            _save(state, tmp / "state.pt")
            if log_file is not None and log_file.is_file():
                shutil.copyfile(log_file, tmp / "metrics.jsonl")
            doc = {"format": FORMAT, "run": self.label, "phase": phase, "step": step,
                   "num_processes": runtime.num_processes,
                   "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   **meta}
            (tmp / "meta.json").write_text(jsonio.dumps(doc, indent=2) + "\n", encoding="utf-8")
        runtime.wait()  # every RNG file is written
        if main:
            _fsync_dir(tmp)
            shutil.rmtree(final, ignore_errors=True)  # same step from an earlier, killed attempt
            os.rename(tmp, final)
            pointer = d / f".{LATEST}.tmp"
            pointer.write_text(name + "\n", encoding="utf-8")
            os.replace(pointer, d / LATEST)
            _fsync_dir(d)
            for old in d.iterdir():  # older checkpoints and leftovers of killed writes
                if old.name != name and (old.name.startswith("step-") or old.name.startswith(".tmp-")):
                    shutil.rmtree(old, ignore_errors=True)
        runtime.wait()
        return final

    def load(self, phase: str, runtime: Any) -> Loaded | None:
        """The newest complete checkpoint of ``phase``, or None.

        Raises:
            CheckpointError: it is unreadable, of another format, or was
                written by a different number of processes.
        """
        d = self._dir(phase)
        pointer = d / LATEST
        if not pointer.is_file():
            return None
        path = d / pointer.read_text(encoding="utf-8").strip()
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} is unreadable ({e}); rerun with --restart "
                                  "to discard it and start over") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, expected "
                                  f"{FORMAT!r}; rerun with --restart to start over")
        if meta.get("num_processes") != runtime.num_processes:
            raise CheckpointError(
                f"checkpoint {path} was written by {meta.get('num_processes')} process(es) and "
                f"this run has {runtime.num_processes}; rerun with --num-processes "
                f"{meta.get('num_processes')} to resume, or with --restart to start over")
        state = _load(path / "state.pt")
        rng = _load(path / f"rng-rank{runtime.process_index}.pt")
        log = path / "metrics.jsonl"
        return Loaded(path, int(meta["step"]), state, rng, log if log.is_file() else None)

    def latest_path(self, phase: str) -> Path | None:
        """Directory of the newest complete checkpoint of ``phase``, or None."""
        pointer = self._dir(phase) / LATEST
        try:
            return self._dir(phase) / pointer.read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def discard(self) -> None:
        """Delete every checkpoint of this run."""
        shutil.rmtree(self.root, ignore_errors=True)


class CheckpointPolicy:
    """When to checkpoint: every ``every_steps`` optimizer steps and/or every
    ``every_minutes`` minutes of wall time (None disables either).

    The time rule is decided by the main process and broadcast, so every
    process agrees (a checkpoint is a collective operation).
    """

    def __init__(self, every_steps: int | None, every_minutes: float | None, runtime: Any):
        self.every_steps, self.every_minutes, self.runtime = every_steps, every_minutes, runtime
        self._last = time.monotonic()

    @property
    def enabled(self) -> bool:
        return bool(self.every_steps) or bool(self.every_minutes)

    def due(self, step: int) -> bool:
        """Whether to checkpoint after optimizer step ``step`` (1-based count)."""
        if self.every_steps and step % self.every_steps == 0:
            return True
        if not self.every_minutes:
            return False
        late = time.monotonic() - self._last >= 60.0 * self.every_minutes
        return bool(self.runtime.broadcast(late))

    def saved(self) -> None:
        """Restart the wall-time clock (after a checkpoint was written)."""
        self._last = time.monotonic()
