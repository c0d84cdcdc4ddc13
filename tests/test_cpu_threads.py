"""CPU threads: ``runtime.threads`` / ``--threads`` sets PyTorch's thread count, stays out
of the fingerprint, and a stage started while other processes keep the cores busy says so
(measured on a real busy process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from badinputs import fails
from conftest import cli, flat, manifest, set_yaml

from theseus_cli.errors import DeviceError
from theseus_cli.train import cpu_threads
from theseus_cli.train.runtime import Runtime

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat") or not CORES,
                                reason="measures /proc/stat (Linux)")


@pytest.fixture
def default_threads():
    """Give the test process PyTorch's default thread count back afterwards."""
    yield
    cpu_threads.apply_threads(None)


@pytest.fixture
def spinner():
    """A real process that keeps one core busy while the test runs."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)  # let it reach the scheduler's run queue
    yield proc
    proc.kill()
    proc.wait()


def test_the_warning_needs_busy_cores_and_threads_beyond_the_free_ones():
    assert cpu_threads.contention_warning(2, 0.1, 2) is None  # idle machine
    assert cpu_threads.contention_warning(1, 1.0, 2) is None  # one thread fits the free core
    assert cpu_threads.contention_warning(4, 1.0, 8) is None  # 4 of 7 free cores
    text = cpu_threads.contention_warning(2, 1.0, 2)
    assert "keep 1.0 of this machine's 2 cores busy" in text and "--threads 1" in text
    assert "--threads 1" in cpu_threads.contention_warning(2, 1.9, 2)  # never 0 threads


def test_runtime_threads_apply_and_none_gives_the_default_back(default_threads):
    import torch

    default = cpu_threads.apply_threads(None)
    assert Runtime("cpu", "no", threads=1).describe()["threads"] == 1
    assert torch.get_num_threads() == 1
    assert Runtime("cpu", "no").threads == default == torch.get_num_threads()
    for bad in (0, -2, 1.5, True):
        with pytest.raises(DeviceError, match=f"invalid threads {bad!r}; accepted"):
            Runtime("cpu", "no", threads=bad)


def test_threads_from_the_file_and_the_option_leave_the_fingerprint(workspace, default_threads):
    set_yaml(workspace, {"runtime": {"threads": 1}})
    cli("finetune-teacher", "-w", workspace, "--max-steps", "1")
    m = manifest(workspace, "finetune-teacher")
    assert m["config"]["runtime"]["threads"] == 1
    out = flat(cli("finetune-teacher", "-w", workspace, "--max-steps", "1", "--threads",
                   "2").output)
    assert "up to date" in out  # the thread count changes no result
    fails(workspace, ["finetune-teacher", "--threads", "0"], 2, "threads", "0")


@linux_only
def test_another_busy_process_is_measured(spinner):
    busy, cores = cpu_threads.busy_cores_by_others(0.5)
    assert cores == CORES
    assert 0.6 <= busy <= cores  # the spinner's core, whatever else runs


@linux_only
def test_a_stage_started_beside_a_busy_process_warns(workspace, spinner, monkeypatch,
                                                      default_threads):
    monkeypatch.setattr(cpu_threads, "_MEASURED", False)  # the first run of this process
    out = flat(cli("finetune-teacher", "-w", workspace, "--max-steps", "1",
                   "--threads", str(CORES)).output)
    assert "warning: other processes keep" in out
    assert f"this run computes on {CORES} threads" in out and "--threads" in out
    assert "published MRPC/finetune-teacher/v1" in out
