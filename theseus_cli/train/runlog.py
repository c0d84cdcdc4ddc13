"""Progress (rich) and the JSON-lines metrics log of one stage run.

Each record goes to ``metrics.jsonl`` in the artifact being written; progress
bars show one bar per training phase with step, loss, p and the dev metric.
Only the main process prints or writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from theseus_cli.store import jsonio

LOG_NAME = "metrics.jsonl"


class Phase:
    """Handle of one progress bar; :meth:`update` also logs the record."""

    def __init__(self, log: RunLog, name: str, task_id: Any):
        self.log, self.name, self.task_id = log, name, task_id
        self.fields: dict[str, str] = {}

    def update(self, step: int, **values: Any) -> None:
        """Advance the bar to optimizer step ``step`` and show ``values``."""
        for k, v in values.items():
            if v is not None:
                self.fields[k] = f"{v:.4g}" if isinstance(v, float) else str(v)
        if self.log.progress is not None:
            shown = "  ".join(f"{k} {v}" for k, v in self.fields.items())
            self.log.progress.update(self.task_id, completed=step, info=shown)


class RunLog:
    """Metrics log and progress display of one run.

    Args:
        path: directory that receives ``metrics.jsonl`` (the staging dir).
        console: where progress and messages go.
        enabled: False on non-main processes (nothing printed or written).
        tracker: called with ``({"EVENT/name": value}, step)`` for every record that
            has a ``step`` (the runtime's experiment trackers), or None.
    """

    def __init__(self, path: Path | None, console: Console, enabled: bool = True,
                 tracker: Any = None):
        self.tracker = tracker if enabled else None
        self.path = Path(path) / LOG_NAME if path is not None and enabled else None
        self.console, self.enabled = console, enabled
        self.progress: Progress | None = None
        self._t0 = time.monotonic()

    def record(self, event: str, **values: Any) -> None:
        """Append one JSON line: ``{"event", "time_s" (since run start), **values}``; the
        values also go to the experiment trackers, except ``step`` and the ``split`` label."""
        if self.tracker is not None and isinstance(values.get("step"), int):
            self.tracker({f"{event}/{k}": v for k, v in values.items()
                          if k not in ("step", "split")}, values["step"])
        if self.path is None:
            return
        doc = {"event": event, "time_s": round(time.monotonic() - self._t0, 3), **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(jsonio.dumps(doc) + "\n")

    def set_elapsed(self, seconds: float) -> None:
        """Make ``time_s`` continue from ``seconds`` (a resumed run)."""
        self._t0 = time.monotonic() - seconds

    def info(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    @contextmanager
    def phase(self, name: str, total_steps: int) -> Iterator[Phase]:
        """A progress bar for a training phase of ``total_steps`` optimizer steps."""
        if not self.enabled:
            yield Phase(self, name, None)
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("<"), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False,
        )
        with self.progress:
            task_id = self.progress.add_task(name, total=total_steps, info="")
            try:
                yield Phase(self, name, task_id)
            finally:
                self.progress.update(task_id, refresh=True)
        self.progress = None
