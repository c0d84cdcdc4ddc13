"""One run at a time: an exclusive lock per (workspace, task, stage).

The lock is ``artifacts/<task>/<stage>/.lock``, held with ``fcntl.flock`` for
the whole run. The operating system releases a ``flock`` when its process
dies, however it dies (SIGKILL included), so a lock can never outlive its
holder. The file also holds JSON describing the holder (pid, host, command
line, start time): a second run reads it to name the running process, and a
run that acquires a lock whose file still describes another process knows
that process died without releasing it (a *stale* lock) and says so.

A released lock's file is emptied, not deleted (deleting a flocked path races
with a process that is about to lock it). ``flock`` is local to one machine:
a workspace shared over NFS by several hosts is not protected.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from theseus_cli.errors import LockError, WorkspaceError

LOCK_NAME = ".lock"


def holder_info() -> dict[str, Any]:
    """What this process writes into a lock it holds."""
    program = Path(sys.argv[0]).name
    if program == "__main__.py":  # python -m theseus_cli
        program = "python -m theseus_cli"
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "command": " ".join([program, *(shlex.quote(a) for a in sys.argv[1:])]),
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 65536):
        raw += chunk
    if not raw.strip():
        return None
    try:
        doc = json.loads(raw)
        return doc if isinstance(doc, dict) else {"raw": raw.decode(errors="replace")}
    except ValueError:
        return {"raw": raw.decode(errors="replace")}


def describe_holder(info: dict[str, Any] | None) -> str:
    """``pid 123 on host h (started ..., command: theseus replace ...)``."""
    if not info:
        return "an unknown process (the lock file is empty)"
    if "pid" not in info:
        return f"an unknown process (lock file content: {info.get('raw', '')[:200]!r})"
    return (f"pid {info['pid']} on host {info.get('host', '?')} (started "
            f"{info.get('started_at', '?')}, command: {info.get('command', '?')})")


class StageLock:
    """The exclusive lock of one stage of one task in a workspace.

    Use as a context manager, or :meth:`acquire` / :meth:`release`.

    Args:
        path: the lock file (its directory is created).
        label: ``"MRPC/replace"``, for messages.

    Attributes:
        stale: after :meth:`acquire`, the holder info of a dead process whose
            lock was taken over, else None.
    """

    def __init__(self, path: Path, label: str):
        self.path, self.label = Path(path), label
        self.stale: dict[str, Any] | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once or fail; never waits.

        Raises:
            LockError: another live process holds it (names its pid and command).
            WorkspaceError: the lock file cannot be created (its path is a
                directory, or the stage directory is not writable).
        """
        if self.path.is_dir():
            raise WorkspaceError(f"the lock path {self.path} of {self.label} is a directory, not a "
                                 f"lock file; remove it (rmdir {self.path}) and run again")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        except OSError as e:
            raise WorkspaceError(f"cannot create the lock file {self.path} of {self.label}: "
                                 f"{e.strerror} ({e.filename}); the stage directory "
                                 f"{self.path.parent} must be a writable directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockError(f"cannot lock {self.path}: {e}") from None
            raise LockError(f"{self.label} is already running in this workspace: "
                            f"{describe_holder(holder)}; lock file {self.path}. Wait for it to "
                            "finish, or stop that process (a killed run resumes from its last "
                            "checkpoint)") from None
        previous = _read(fd)
        self.stale = previous if previous and previous.get("pid") != os.getpid() else None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(holder_info()) + "\n").encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file and release it (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> StageLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def probe(path: Path, label: str) -> None:
    """Fail now if ``path`` is locked by a live process (acquire, then release).

    Used before launching several processes, so a locked stage fails before
    any worker starts; the worker's own lock is still what guarantees
    exclusion.

    Raises:
        LockError: as :meth:`StageLock.acquire`.
    """
    lock = StageLock(path, label)
    lock.acquire()
    # keep a stale holder's description for the real run to report
    fd = lock._fd
    lock._fd = None
    try:
        os.ftruncate(fd, 0)  # type: ignore[arg-type]
        os.lseek(fd, 0, os.SEEK_SET)  # type: ignore[arg-type]
        if lock.stale:
            os.write(fd, (json.dumps(lock.stale) + "\n").encode())  # type: ignore[arg-type]
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        os.close(fd)  # type: ignore[arg-type]
