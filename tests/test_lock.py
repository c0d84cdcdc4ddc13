"""One run at a time per (workspace, task, stage): flock-based lock, stale-lock takeover."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import procs
import pytest
from conftest import cli, flat, versions

from theseus_cli.errors import LockError
from theseus_cli.store.lock import StageLock, probe

STAGE = "finetune-teacher"


def test_second_holder_fails_naming_the_first(tmp_path):
    path = tmp_path / "stage" / ".lock"
    first = StageLock(path, "MRPC/x")
    first.acquire()
    info = json.loads(path.read_text())
    assert info["pid"] == os.getpid() and info["command"] and info["started_at"]
    with pytest.raises(LockError) as e:
        StageLock(path, "MRPC/x").acquire()  # another open file description: conflicts
    assert f"MRPC/x is already running in this workspace: pid {os.getpid()}" in str(e.value)
    assert e.value.exit_code == 75
    with pytest.raises(LockError):
        probe(path, "MRPC/x")
    first.release()
    assert path.read_text() == ""  # released: emptied, nothing stale
    with StageLock(path, "MRPC/x") as again:
        assert again.stale is None


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    path = tmp_path / ".lock"
    path.write_text(json.dumps({"pid": int(dead), "host": "h", "command": "theseus replace",
                                "started_at": "2020-01-01T00:00:00+00:00"}))
    lock = StageLock(path, "MRPC/replace")
    lock.acquire()  # the OS released the dead process's flock: no error
    assert lock.stale["pid"] == int(dead)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()


def test_second_run_fails_while_the_first_completes(tmp_path, workspace):
    marker = tmp_path / "holding"
    first = procs.start(procs.theseus(STAGE, "-w", workspace), tmp_path / "first.log",
                        THESEUS_TEST_HOLD_PUBLISH=str(marker))
    try:
        procs.wait_for(marker.exists, first, what="the first run to reach its publish")
        second = procs.run(procs.theseus(STAGE, "-w", workspace))
        assert first.poll() is None  # the first is still running
        assert second.returncode == 75, second.stdout
        text = flat(second.stdout)
        assert (f"error: MRPC/{STAGE} is already running in this workspace: pid {first.pid}"
                in text)
        assert f"command: python -m theseus_cli {STAGE} -w {workspace}" in text
        # an automatic upstream run takes the same lock
        up = flat(cli("replace", "-w", workspace, ok=False).output)
        assert f"MRPC/{STAGE} is already running in this workspace: pid {first.pid}" in up
        # --num-processes checks the lock before launching any worker
        multi = cli(STAGE, "-w", workspace, "--num-processes", "2", ok=False)
        assert multi.exit_code == 75 and "launching" not in multi.output
    finally:
        marker.unlink(missing_ok=True)  # let the first run publish
    assert first.wait(timeout=procs.TIMEOUT) == 0, (tmp_path / "first.log").read_text()
    assert versions(workspace, STAGE) == ["v1"] and versions(workspace, "replace") == []
    assert "took over" not in (tmp_path / "first.log").read_text()


def test_probe_keeps_a_stale_holder_for_the_real_run(tmp_path):
    path = tmp_path / ".lock"
    stale = {"pid": 999999999, "host": "h", "command": "theseus replace", "started_at": "x"}
    path.write_text(json.dumps(stale) + "\n")
    probe(path, "MRPC/replace")  # what `--num-processes` does before launching
    assert json.loads(path.read_text()) == stale
    lock = StageLock(path, "MRPC/replace")
    lock.acquire()
    assert lock.stale == stale
    lock.release()
