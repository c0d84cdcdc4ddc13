"""Helpers for tests that run ``theseus`` as real subprocesses (kills, locks, launchers).

Every subprocess gets one CPU thread, offline Hugging Face libraries and the
test session's caches (inherited from the environment the session fixture set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

TIMEOUT = 120  # seconds any one subprocess may take


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="400", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        out.pop(k, None)
    out.update(extra)
    return out


def theseus(*args: object) -> list[str]:
    return [sys.executable, "-m", "theseus_cli", *map(str, args)]


def _default_sigint() -> None:
    """In the child: SIGINT back to its default, so Python installs its Ctrl-C handler even
    when the test runner inherited SIGINT ignored (a shell's background job does)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cmd: list[str], log: Path, **extra_env: str) -> subprocess.Popen:
    """Start ``cmd`` with its stdout+stderr going to ``log``."""
    f = open(log, "wb")
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env(**extra_env),
                            preexec_fn=_default_sigint)


def run(cmd: list[str], timeout: float = TIMEOUT, **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion; output (stdout+stderr) in ``.stdout``."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=env(**extra_env), timeout=timeout)


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = TIMEOUT,
             what: str = "condition") -> None:
    """Poll ``predicate`` every 10 ms; fail if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def records(path: Path) -> list[dict]:
    """metrics.jsonl records without their wall-clock field."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        doc.pop("time_s", None)
        out.append(doc)
    return out
