"""Typed errors raised by library code.

Only the CLI layer (``theseus_cli.cli.app``) turns these into messages and exit
codes. Every error message names the bad value and, where there is a closed
set, the accepted ones.
"""

from __future__ import annotations

from collections.abc import Iterable


class TheseusError(Exception):
    """Base class of every error theseus raises on purpose.

    ``exit_code`` is the process exit status the CLI uses for it.
    """

    exit_code = 1


class ConfigError(TheseusError):
    """A configuration value or key is invalid (theseus.yaml or CLI option)."""

    exit_code = 2


class UnknownNameError(ConfigError):
    """A name (task, stage, scheduler, successor builder, ...) is not registered.

    The message lists the available names.
    """

    def __init__(self, kind: str, name: str, available: Iterable[str]):
        self.kind, self.name, self.available = kind, name, sorted(available)
        names = ", ".join(self.available) or "(none)"
        super().__init__(f"unknown {kind} {name!r}; available: {names}")


class WorkspaceError(TheseusError):
    """No workspace was found, or it is unusable."""

    exit_code = 2


class ArtifactError(TheseusError):
    """An artifact version is missing or incomplete, or a pinned version does not exist."""


class IntegrityError(ArtifactError):
    """A published artifact version no longer matches its manifest.

    A file is missing, has another size or sha256 than recorded, the manifest
    itself was edited (its seal differs), or an ancestor changed since the
    version was made from it. The message names the version, the file and how
    to recover (rerun the producing stage with ``--force``). Exit status 4.
    """

    exit_code = 4

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class TrainingDivergedError(TheseusError):
    """Training produced a non-finite loss (NaN/inf) that did not recover,
    or no dev evaluation gave a finite score, or a model's weights are not finite.

    Nothing is published; the last checkpoint from before the divergence is
    kept. Exit status 3.
    """

    exit_code = 3


class ModelSourceError(ConfigError):
    """The predecessor model cannot be found or read (missing directory,
    unreachable hub, corrupted or truncated weights), or module replacing
    does not support its architecture."""


class StageInterrupted(TheseusError):
    """A run was stopped by a signal (SIGINT or SIGTERM) before it published.

    Exit status 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int):
        import signal

        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class DataError(TheseusError):
    """Task data is missing or malformed (names the file and line). Exit status 2:
    the input has to be fixed before anything can run."""

    exit_code = 2


class DeviceError(TheseusError):
    """The requested device or precision is not available on this machine."""

    exit_code = 2


class PluginError(TheseusError):
    """A plugin broke the contract in ``theseus_cli.plugin``."""


class ExportError(TheseusError):
    """The successor cannot be exported as a stock Hugging Face model."""


def closest_keys_message(bad: str, accepted: Iterable[str]) -> str:
    """Return ``"'bad'; accepted: a, b, c"`` for error messages."""
    return f"{bad!r}; accepted: {', '.join(sorted(accepted))}"


class PlotError(TheseusError):
    """A plot could not be drawn (matplotlib missing or failing); the run's results are
    published without it."""


class LockError(TheseusError):
    """Another process is running the same stage for the same task in this workspace.

    The message names the holder's pid, host, start time and command line.
    Exit status 75 (EX_TEMPFAIL: try again later).
    """

    exit_code = 75


class CheckpointError(TheseusError):
    """A training checkpoint cannot be resumed (unreadable, or written by a
    different setup, e.g. another number of processes); ``--restart`` discards it."""
