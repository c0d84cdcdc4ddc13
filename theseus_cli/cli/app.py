"""The ``theseus`` command line (Typer). The only layer that prints errors and exits.

Stage commands are built from the registered stage plugins: every field of a
stage's ``Params`` becomes an option, so a third-party stage gets a command
of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from theseus_cli import sweep as sweeping
from theseus_cli.cli.common import (
    console,
    handle_errors,
    print_warnings,
    quiet_libraries,
    raise_on_sigterm,
)
from theseus_cli.cli.stage_commands import register_stage_commands
from theseus_cli.data.glue import TRAINABLE_TASKS
from theseus_cli.errors import ConfigError, IntegrityError
from theseus_cli.plugin import registry
from theseus_cli.store.artifacts import ArtifactStore, recovery_hint
from theseus_cli.store.integrity import verify_workspace
from theseus_cli.tables import Column, fitted_table
from theseus_cli.workspace.config import (
    find_workspace,
    load_config,
)
from theseus_cli.workspace.manage import init_workspace, status_rows


class _Commands(TyperGroup):
    """``theseus --help`` lists every command with its whole summary, wrapped, where
    click would cut it to the terminal's width with ``...``."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                text = " ".join((cmd.short_help or (cmd.help or "").split("\n\n")[0]).split())
                text = text[:1].upper() + text[1:]  # plugins' summaries read like ours
                rows.append((name, text if text.endswith(".") else text + "."))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="theseus", cls=_Commands, no_args_is_help=True, add_completion=False,
    rich_markup_mode=None,
    help="Compress Transformer models by progressive module replacing (BERT-of-Theseus).",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("theseus-cli")
        except PackageNotFoundError:  # run from a source tree that is not installed
            text = "unknown (not installed)"
        typer.echo(f"theseus {text}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Compress Transformer models by progressive module replacing (BERT-of-Theseus)."""

# --------------------------------------------------------------------- init
@app.command()
@handle_errors
def init(
    directory: Path = typer.Argument(Path("."), help="workspace directory (created if missing)"),
    task: Optional[list[str]] = typer.Option(
        None, "--task", help="GLUE task (repeat for a multi-task workspace): CoLA, SST-2, MRPC, "
                             "STS-B, QQP, MNLI, QNLI, RTE, WNLI; default: MRPC"),
    glue_all: bool = typer.Option(False, "--glue-all", help="cover every GLUE task "
                                  "(AX is predicted with the MNLI model)"),
    model: str = typer.Option("embedded", "--model", help="predecessor: `embedded`, a hub id, "
                                                          "or a local directory"),
    glue_dir: Optional[Path] = typer.Option(None, "--glue-dir", help="GLUE data in the original "
                                            "TSV layout; default: $THESEUS_GLUE_DIR, else the hub"),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="start from a recipe's "
                                          "theseus.yaml (see the workspaces/ folder)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing theseus.yaml"),
    train: Optional[Path] = typer.Option(None, "--train", help="your own task: its training "
                                         "file (CSV, TSV, JSON, JSON Lines, Parquet, CoNLL) "
                                         "or a save_to_disk directory; name it with --task "
                                         "NAME"),
    validation: Optional[Path] = typer.Option(None, "--validation", help="validation file; "
                                              "default: --validation-split of train held out"),
    test: Optional[Path] = typer.Option(None, "--test", help="test file (scored when labelled)"),
    data_format: Optional[str] = typer.Option(None, "--format", help="data format (csv, tsv, "
                                              "json, jsonl, parquet, conll, saved); default: "
                                              "from "
                                              "the extension"),
    text_column: Optional[list[str]] = typer.Option(None, "--text-column", help="text column "
                                                    "(twice for a pair); default: text"),
    label_column: Optional[str] = typer.Option(None, "--label-column",
                                               help="label column (tag lists for token "
                                               "classification); default: label"),
    tokens_column: Optional[str] = typer.Option(None, "--tokens-column", help="token "
                                                "classification: the column of word lists; "
                                                "default: tokens"),
    labels: Optional[str] = typer.Option(None, "--labels", help="class names in order, "
                                         "comma-separated; default: train's, sorted"),
    validation_split: Optional[float] = typer.Option(None, "--validation-split", help="share "
                                                     "of train held out without --validation "
                                                     "(default 0.1, stratified, seeded)"),
    kind: Optional[str] = typer.Option(None, "--kind", help="task kind: "
                                       "sequence-classification, regression, "
                                       "token-classification or a plugin's; default: from "
                                       "the data"),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="a model already fine-tuned "
                                          "on the task (local directory or hub id): the "
                                          "teacher, adopted without training"),
) -> None:
    """Create a workspace with a commented, validated theseus.yaml."""
    tasks = list(TRAINABLE_TASKS) if glue_all else task
    user_task = None
    if train is not None:
        user_task = {"train": train, "validation": validation, "test": test,
                     "format": data_format, "text_columns": text_column or None,
                     "label_column": label_column, "tokens_column": tokens_column,
                     "labels": labels.split(",") if labels else None,
                     "validation_split": validation_split, "kind": kind}
    elif any(v is not None for v in (validation, test, data_format, text_column, label_column,
                                     tokens_column, labels, validation_split, kind)):
        raise ConfigError("--validation, --test, --format, --text-column, --label-column, "
                          "--tokens-column, --labels, --validation-split and --kind describe "
                          "your own task: give its training file with --train")
    if teacher is not None and model != "embedded":
        raise ConfigError(f"--teacher {teacher} and --model {model}: the teacher is the model; "
                          "give one of them")
    if teacher is not None and Path(teacher).expanduser().exists():
        teacher = str(Path(teacher).expanduser().resolve())  # read from the workspace later
    path = init_workspace(directory, tasks=tasks, model=teacher or model, glue_dir=glue_dir,
                          recipe=recipe, force=force, user_task=user_task,
                          adopt=teacher is not None)
    console.print(f"[green]workspace ready:[/] {path}")
    console.print(f"next: cd {directory} && theseus replace --scheduler linear")


# ------------------------------------------------------------------- status
@app.command()
@handle_errors
def status(
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="workspace directory"),
) -> None:
    """What exists in the workspace: stages, versions and key metrics."""
    rows, config = status_rows(workspace)
    print_warnings(config)
    columns = [Column("task"), Column("stage"), Column("versions", drop=1), Column("latest"),
               Column("created", drop=2), Column("seconds", "right", 3),
               Column("key metrics")]
    console.print(fitted_table(f"theseus workspace {config.root} (model {config.model}, "
                               f"tasks {', '.join(config.tasks)})", columns, rows,
                               console.width))


# ------------------------------------------------------------------- verify
@app.command()
@handle_errors
def verify(
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="workspace directory"),
) -> None:
    """Check every artifact version against its manifest (files, sizes, sha256, the
    manifest's seal, inputs); exit status 4 if anything does not match."""
    config = load_config(find_workspace(workspace))
    print_warnings(config)
    reports = verify_workspace(ArtifactStore(config.artifacts_dir))
    table = Table(title=f"theseus verify {config.root}")
    for col in ("version", "result"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.label, "[green]ok[/]" if r.ok else "[red]" + "; ".join(r.problems) + "[/]")
    console.print(table)
    bad = [r for r in reports if not r.ok]
    if bad:
        raise IntegrityError(
            f"{len(bad)} of {len(reports)} versions do not match their manifests: "
            + ", ".join(r.label for r in bad) + f". To recover, {recovery_hint(bad[0].label)}")
    console.print(f"[green]all {len(reports)} versions match their manifests[/]")


# -------------------------------------------------------------------- sweep
@app.command()
@handle_errors
def sweep(
    stage: str = typer.Argument(..., help="stage whose parameters are searched (it must "
                                "publish a dev score), e.g. replace or finetune-teacher"),
    param: Optional[list[str]] = typer.Option(
        None, "--param", help="NAME=V1,V2,... (values), NAME=LOW:HIGH or NAME=LOW:HIGH:log "
        "(ranges, random/tpe); NAME is a stage parameter (learning_rate) or SELECTOR.ARG "
        "(scheduler.b); repeatable"),
    seeds: str = typer.Option("1", "--seeds", help="N: the N seeds runtime.seed, +1, ...; or "
                              "S1,S2,...: those seeds; a trial's score is the median over them "
                              "(the paper: 5)"),
    sampler: Optional[str] = typer.Option(None, "--sampler", help="grid | random | tpe; "
                                          "default: grid when every --param is a list, else tpe"),
    trials: Optional[int] = typer.Option(None, "--trials", help="trials to finish; default: "
                                         "the grid size (required with ranges)"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna RDB URL shared by "
                                          "several machines; default: sqlite in "
                                          "artifacts/<task>/sweep/study.db"),
    study: Optional[str] = typer.Option(None, "--study", help="study name; default: derived "
                                        "from the stage, space, seeds and settings (rerunning "
                                        "the same command resumes it)"),
    select: Optional[str] = typer.Option(None, "--select", help="where the best configuration "
                                         "is selected: dev or holdout (a slice of the training "
                                         "set); default: data.selection of the workspace"),
    task: Optional[str] = typer.Option(None, "--task", help="GLUE task; default: the "
                                       "workspace's first task"),
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="workspace directory"),
) -> None:
    """Search a stage's hyper-parameters (paper section 4.3: grid, early stopping on dev,
    median over seeds); every run is an artifact version; resumes after a kill; publishes
    artifacts/<task>/sweep/vN with the trials table, the best configuration and its command."""
    quiet_libraries()
    config = load_config(find_workspace(workspace))
    print_warnings(config)
    plan = sweeping.plan_sweep(config, stage, task=task, params=list(param or []), seeds=seeds,
                               sampler=sampler, trials=trials, storage=storage, study=study,
                               select=select or config.data.selection, console=console)
    sweeping.run_sweep(config, plan, console)

@app.command()
def plugins() -> None:
    """List the loaded stages, schedulers and successor builders (and broken plugins)."""
    table = Table(title="theseus plugins")
    for col in ("kind", "name", "from", "status"):
        table.add_column(col)
    for group, kind in registry.KIND.items():
        for p in registry.discover(group):
            state = "[green]ok[/]" if p.error is None else f"[red]broken: {p.error}[/]"
            table.add_row(kind, p.name, p.distribution, state)
    console.print(table)


register_stage_commands(app)


def main() -> None:
    """Console-script entry point."""
    raise_on_sigterm()
    app()
