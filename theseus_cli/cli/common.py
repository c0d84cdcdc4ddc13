"""What every ``theseus`` command shares: the consoles, typed errors turned into messages
and exit codes, signals, and quiet libraries."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console

from theseus_cli.errors import (
    StageInterrupted,
    TheseusError,
)

console = Console()
err_console = Console(stderr=True)


INTERRUPTED = ("nothing was published; rerun the same command to resume from the last "
               "checkpoint (--restart discards it)")


def handle_errors(fn: Any) -> Any:
    """Turn typed library errors into a red message and the error's exit code;
    SIGINT and SIGTERM end a run the same way (nothing half-published)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StageInterrupted as e:
            err_console.print(f"[yellow]{e}: {INTERRUPTED}[/]", highlight=False)
            raise typer.Exit(e.exit_code) from None
        except TheseusError as e:
            err_console.print(f"[bold red]error:[/] {e}", highlight=False)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print(f"[yellow]interrupted by SIGINT: {INTERRUPTED}[/]")
            raise typer.Exit(130) from None

    return wrapper


def raise_on_sigterm() -> None:
    """SIGTERM raises :class:`StageInterrupted` in the main thread, like Ctrl-C
    raises KeyboardInterrupt: staging directories are removed on the way out,
    checkpoints stay, and a publish in progress finishes first (it holds the signal)."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise StageInterrupted(signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    try:
        import datasets
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def print_warnings(config: Any) -> None:
    for text in getattr(config, "warnings", []):
        err_console.print(f"[yellow]warning: {text}[/]", highlight=False)


# ------------------------------------------------------------------ plugins
