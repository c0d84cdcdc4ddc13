"""``theseus <stage> --num-processes N``: the same command, run by N processes.

A shortcut for ``accelerate launch --num_processes N -m theseus_cli <stage> ...``:
the command line is rebuilt from the options given (without
``--num-processes``) and executed through Accelerate's launcher, which starts
N worker processes (gloo on cpu, nccl on GPUs) on a free port. Running
``accelerate launch`` or ``torchrun`` yourself works as well: the runtime reads
the environment they set.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from typing import Any

from theseus_cli.errors import ConfigError


def launched_world_size() -> int | None:
    """The number of processes when running under a launcher, else None."""
    if "LOCAL_RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        return None
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def command_line(ctx: Any, drop: tuple[str, ...] = ("num_processes",)) -> list[str]:
    """``[stage, --option, value, ...]``: the options given on the command line
    of a (Typer/click) command context, except the parameters named in ``drop``."""
    argv = [ctx.info_name]
    for param in ctx.command.params:
        if param.name in drop or getattr(param, "param_type_name", "") != "option":
            continue
        source = ctx.get_parameter_source(param.name)
        if getattr(source, "name", None) != "COMMANDLINE":
            continue
        value = ctx.params[param.name]
        if param.is_flag:
            if param.secondary_opts:
                argv.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                argv.append(param.opts[0])
            continue
        for v in (value if param.multiple else [value]):
            argv += [param.opts[0], str(v)]
    return argv


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher_command(num_processes: int, precision: str, argv: list[str]) -> list[str]:
    """The ``accelerate launch`` command that runs ``theseus ARGV`` in N processes
    (on one machine, on a free port)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--num_processes", str(num_processes), "--num_machines", "1",
           "--mixed_precision", precision, "--dynamo_backend", "no",
           "--main_process_port", str(_free_port())]
    # --multi_gpu selects the torchrun-style launcher (Accelerate's --cpu starts one process
    # only); on cpu the workers still run on cpu over gloo (runtime.device is passed on).
    cmd.append("--multi_gpu")
    return [*cmd, "-m", "theseus_cli", *argv]


def check_num_processes(num_processes: int) -> bool:
    """Whether the command must relaunch itself with ``num_processes`` workers.

    Raises:
        ConfigError: N < 1, or it contradicts the launcher this runs under.
    """
    if num_processes < 1:
        raise ConfigError(f"--num-processes {num_processes}: must be at least 1")
    world = launched_world_size()
    if world is not None:
        if world != num_processes:
            raise ConfigError(f"--num-processes {num_processes}, but this command already runs "
                              f"under a launcher with {world} process(es)")
        return False
    return num_processes > 1


def relaunch(num_processes: int, precision: str, argv: list[str], echo: Any = None) -> int:
    """Run ``theseus ARGV`` in ``num_processes`` processes and wait.

    Returns:
        The launcher's exit status (the first failing worker's).
    """
    cmd = launcher_command(num_processes, precision, argv)
    if echo is not None:
        echo(f"launching {num_processes} processes: {shlex.join(cmd)}")
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    return subprocess.run(cmd, env=env).returncode
