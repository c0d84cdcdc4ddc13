"""Runtime options (--compile) and the --num-processes relaunch command line."""

from __future__ import annotations

import pytest
from conftest import cli, flat, manifest

from theseus_cli.errors import ConfigError, DeviceError
from theseus_cli.train import launch
from theseus_cli.train.runtime import Runtime


def test_compile_wraps_prepared_models_and_unwrap_removes_it():
    import torch

    runtime = Runtime("cpu", "no", compile=True)
    model = runtime.prepare(torch.nn.Linear(3, 2))
    assert type(model).__name__ == "OptimizedModule"  # compiled lazily, on first call
    assert type(runtime.unwrap(model)) is torch.nn.Linear
    assert runtime.describe()["compile"] is True


def test_compile_without_a_cxx_compiler_is_a_clear_error(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DeviceError, match="--compile on cpu needs a C\\+\\+ compiler"):
        Runtime("cpu", "no", compile=True)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(DeviceError, match="fp16' needs a GPU"):
        Runtime("cpu", "fp16")


def test_launcher_command_and_process_count(monkeypatch):
    cmd = launch.launcher_command(2, "bf16", ["replace", "--epochs", "1"])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert cmd[-5:] == ["-m", "theseus_cli", "replace", "--epochs", "1"]
    for k in ("WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert launch.check_num_processes(2) and not launch.check_num_processes(1)
    with pytest.raises(ConfigError, match="at least 1"):
        launch.check_num_processes(0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not launch.check_num_processes(2)  # already one of the 2 workers
    with pytest.raises(ConfigError, match="already runs under a launcher with 2"):
        launch.check_num_processes(4)


def test_num_processes_relaunches_the_same_options(workspace, monkeypatch):
    seen = {}

    def fake_relaunch(n, precision, argv, echo=None):
        seen.update(n=n, precision=precision, argv=argv)
        return 0

    monkeypatch.setattr(launch, "relaunch", fake_relaunch)
    cli("replace", "-w", workspace, "--num-processes", "2", "--epochs", "2", "--no-upstream",
        "--scheduler-arg", "b=0.2", "--scheduler-arg", "k=0.1", "--restart")
    assert seen["n"] == 2 and seen["precision"] == "no"
    argv = seen["argv"]
    assert argv[0] == "replace" and "--num-processes" not in argv
    assert argv[argv.index("--workspace") + 1] == str(workspace)
    assert argv[argv.index("--epochs") + 1] == "2"
    assert "--no-upstream" in argv and "--restart" in argv
    i = argv.index("--scheduler-arg")
    assert argv[i:i + 4] == ["--scheduler-arg", "b=0.2", "--scheduler-arg", "k=0.1"]
    assert not list(workspace.glob("artifacts/*/*/v*"))  # nothing ran in this process


@pytest.mark.slow
def test_compile_smoke_run_on_cpu(workspace):
    """A real `--compile` training run (about a minute and a half on 2 cpu cores)."""
    out = flat(cli("finetune-teacher", "-w", workspace, "--compile", "--max-steps", "2").output)
    assert "published MRPC/finetune-teacher/v1" in out
    assert manifest(workspace, "finetune-teacher")["config"]["runtime"]["compile"] is True
