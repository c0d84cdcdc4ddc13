"""What a user reads fits an 80-column terminal: ``status`` and ``evaluate`` tables
leave out columns rather than cut words (theseus_cli.tables)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import copy_workspace

from theseus_cli.tables import Column, fitted_table


def _run(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    done = subprocess.run([sys.executable, "-m", "theseus_cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _fits(text: str, width: int = 80) -> None:
    assert "…" not in text, text  # rich's cut
    cut = [line for line in text.splitlines() if re.search(r"[a-z]\.\.\.$", line)]
    assert not cut, cut  # click's cut of a command's summary ("Create a workspace...")
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, too_long


def test_status_and_evaluate_read_cleanly_at_80_columns(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    status = _run("status", "-w", ws)
    _fits(status)
    assert "finetune-successor" in status and "left out at this width" in status
    evaluate = _run("evaluate", "-w", ws)
    _fits(evaluate)
    for word in ("teacher", "theseus", "majority", "retention", "speed-up"):
        assert word in evaluate, word
    assert "tables.md" in evaluate  # where the whole table is
    wide = _run("status", "-w", ws, columns=200)
    assert "seconds" in wide and "left out" not in wide


def test_too_narrow_for_any_table_prints_one_block_per_row():
    from rich.console import Console

    columns = [Column("name"), Column("value", "right")]
    console = Console(width=24, record=True, file=open(os.devnull, "w"))
    console.print(fitted_table("t", columns, [["a-very-long-name", "1.0"]], console.width))
    text = console.export_text()
    assert "name: a-very-long-name" in text and "value: 1.0" in text and "…" not in text


def test_every_commands_help_reads_cleanly_at_80_columns():
    """No option name or word cut (``--max-train-sampl…``) and no line past 80 columns,
    in the help of every command (one process: the CLI in-process, COLUMNS=80)."""
    from click.testing import CliRunner
    from typer.main import get_command

    from theseus_cli.cli.app import app

    command = get_command(app)
    runner = CliRunner()
    names = [None, *command.list_commands(None)]
    assert {"replace", "export", "evaluate", "sweep"} <= set(names)
    for name in names:
        result = runner.invoke(command, [*([name] if name else []), "--help"],
                               env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, (name, result.output)
        _fits(result.output)
