"""The ``theseus`` command line (Typer). The only layer that prints errors and exits.

Stage commands are built from the registered stage plugins: every field of a
stage's ``Params`` becomes an option, so a third-party stage gets a command
of its own.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from theseus_cli import params as P
from theseus_cli import registry
from theseus_cli.errors import ConfigError, StageInterrupted, TheseusError

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="theseus", no_args_is_help=True, add_completion=False,
    help="Compress Transformer models by progressive module replacing (BERT-of-Theseus).",
)


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


def _raise_on_sigterm() -> None:
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


def _quiet_libraries() -> None:
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
) -> None:
    """Create a workspace with a commented, validated theseus.yaml."""
    from theseus_cli.workspace import init_workspace

    from theseus_cli.glue import TRAINABLE_TASKS

    tasks = list(TRAINABLE_TASKS) if glue_all else task
    path = init_workspace(directory, tasks=tasks, model=model, glue_dir=glue_dir,
                          recipe=recipe, force=force)
    console.print(f"[green]workspace ready:[/] {path}")
    console.print(f"next: cd {directory} && theseus replace --scheduler linear")


# ------------------------------------------------------------------- status
@app.command()
@handle_errors
def status(
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="workspace directory"),
) -> None:
    """What exists in the workspace: stages, versions and key metrics."""
    from theseus_cli.workspace import status_rows

    rows, config = status_rows(workspace)
    _print_warnings(config)
    table = Table(title=f"theseus workspace {config.root} (model {config.model}, "
                        f"tasks {', '.join(config.tasks)})")
    for col in ("task", "stage", "versions", "latest", "created", "seconds", "key metrics"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


# ------------------------------------------------------------------- verify
@app.command()
@handle_errors
def verify(
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", help="workspace directory"),
) -> None:
    """Check every artifact version against its manifest (files, sizes, sha256, the
    manifest's seal, inputs); exit status 4 if anything does not match."""
    from theseus_cli.artifacts import ArtifactStore
    from theseus_cli.config import find_workspace, load_config
    from theseus_cli.errors import IntegrityError
    from theseus_cli.integrity import recovery_hint, verify_workspace

    config = load_config(find_workspace(workspace))
    _print_warnings(config)
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
    from theseus_cli import sweep as sweeping
    from theseus_cli.config import find_workspace, load_config

    _quiet_libraries()
    config = load_config(find_workspace(workspace))
    _print_warnings(config)
    plan = sweeping.plan_sweep(config, stage, task=task, params=list(param or []), seeds=seeds,
                               sampler=sampler, trials=trials, storage=storage, study=study,
                               select=select or config.data.selection, console=console)
    sweeping.run_sweep(config, plan, console)


def _print_warnings(config: Any) -> None:
    for text in getattr(config, "warnings", []):
        err_console.print(f"[yellow]warning: {text}[/]", highlight=False)


# ------------------------------------------------------------------ plugins
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


# ----------------------------------------------------------- stage commands
def _opt(name: str, annotation: Any, help: str, *decls: str) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(None, *decls, help=help, show_default=False))


COMMON = [
    _opt("workspace", Optional[Path], "workspace directory; default: found from the current "
         "directory upward", "--workspace", "-w"),
    _opt("task", Optional[list[str]], "GLUE task (repeatable); default: the workspace's tasks",
         "--task"),
    inspect.Parameter("glue_all", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--glue-all", help="every GLUE task (missing "
                                           "data or models are named, not skipped silently)")),
    _opt("pins", Optional[list[str]], "input version to use, VERSION (the stage's primary input) "
         "or STAGE=VERSION; default: latest complete", "--from"),
    inspect.Parameter("no_upstream", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--no-upstream", help="fail instead of running "
                                           "a missing upstream stage")),
    inspect.Parameter("force", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--force", help="run even if an up-to-date "
                                           "version with the same params and inputs exists")),
    _opt("device", Optional[str], "auto | cuda | mps | cpu", "--device"),
    _opt("precision", Optional[str], "no | fp16 | bf16", "--precision"),
    _opt("seed", Optional[int], "random seed of the run", "--seed"),
    _opt("report_to", Optional[str], "experiment trackers: none | tensorboard | mlflow | wandb "
         "(comma-separated; runtime.report_to)", "--report-to"),
    _opt("seeds", Optional[str], "run once per seed: a count (3: seeds base..base+2, base = "
         "--seed or runtime.seed) or a list (1,2,3); each seed is its own artifact version",
         "--seeds"),
    _opt("glue_dir", Optional[Path], "GLUE data directory (original TSV layout)", "--glue-dir"),
    _opt("max_train_samples", Optional[int], "use only the first N training examples",
         "--max-train-samples"),
    _opt("max_eval_samples", Optional[int], "use only the first N dev examples",
         "--max-eval-samples"),
    _opt("num_processes", Optional[int], "run in N processes (one per GPU; gloo on cpu) through "
         "`accelerate launch`", "--num-processes"),
    inspect.Parameter("restart", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                      default=typer.Option(False, "--restart", help="discard the checkpoints of "
                                           "an interrupted run instead of resuming from them")),
    inspect.Parameter("compile", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[bool],
                      default=typer.Option(None, "--compile/--no-compile", help="torch.compile "
                                           "the models (runtime.compile)", show_default=False)),
    inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
]
COMMON_NAMES = {p.name for p in COMMON}


def _field_parameter(f: dataclasses.Field, tp: Any) -> inspect.Parameter | None:
    meta = f.metadata
    if not meta.get("cli", True):
        return None
    inner, _ = P.base_type(tp)
    dash = f.name.replace("_", "-")
    help = meta.get("help", "")
    if meta.get("choices"):
        help += f" [{' | '.join(map(str, meta['choices']))}]"
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is not None:
        help += f" (built-in default: {default})"
    if inner is bool:
        return _opt(f.name, Optional[bool], help, f"--{dash}/--no-{dash}")
    if inner in (int, float, str):
        return _opt(f.name, Optional[inner], help, f"--{dash}")
    return None  # lists/dicts: set them in theseus.yaml


#: below each stage's --help: where the values not given on the command line come from
DEFAULTS_NOTE = ("Options not given take their value from the workspace's theseus.yaml "
                 "(`theseus init` writes the tuned recipe there for the embedded model), "
                 "else the built-in default shown.")


def stage_command(stage_cls: type) -> Any:
    """A Typer command function for a stage plugin, options from its Params."""
    hints = P.field_types(stage_cls.Params)
    params = list(COMMON)
    field_names, selectors = [], []
    for f in dataclasses.fields(stage_cls.Params):
        if f.name in COMMON_NAMES:
            continue
        if f.metadata.get("plugin_group"):
            selector = f.name[:-1]
            selectors.append(selector)
            params.append(_opt(f"{selector}_args", Optional[list[str]],
                               f"KEY=VALUE argument of the selected {selector} (repeatable)",
                               f"--{selector}-arg"))
            continue
        p = _field_parameter(f, hints[f.name])
        if p is not None:
            params.append(p)
            field_names.append(f.name)

    def command(**kwargs: Any) -> None:
        overrides = {k: kwargs.get(k) for k in field_names}
        plugin_overrides = {s: P.parse_assignments(kwargs.get(f"{s}_args"), f"--{s}-arg")
                            for s in selectors}
        run_stage(stage_cls.name, kwargs, overrides, plugin_overrides)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = stage_cls.help
    command.__name__ = stage_cls.name.replace("-", "_")
    return command


def parse_pins(items: list[str] | None, stage_cls: type) -> dict[str, str]:
    """``--from`` values -> input stage -> version. A bare version pins the primary input."""
    pins: dict[str, str] = {}
    for item in items or []:
        if "=" in item:
            name, version = item.split("=", 1)
        elif stage_cls.inputs:
            name, version = stage_cls.inputs[-1], item
        else:
            raise ConfigError(f"--from {item}: {stage_cls.name} reads no input artifacts")
        pins[name.strip()] = version.strip()
    return pins


def run_stage(stage: str, common: dict[str, Any], overrides: dict[str, Any],
              plugin_overrides: dict[str, dict[str, Any]]) -> None:
    """Load the workspace, apply CLI overrides, run the stage, print its metrics."""
    from theseus_cli.config import DataSettings, RuntimeSettings, find_workspace, load_config
    from theseus_cli.pipeline import Pipeline

    _quiet_libraries()
    config = load_config(find_workspace(common.get("workspace")))
    data = {k: common.get(k) for k in ("max_train_samples", "max_eval_samples")
            if common.get(k) is not None}
    if common.get("glue_dir") is not None:
        data["glue_dir"] = str(Path(common["glue_dir"]).expanduser().resolve())
    runtime = {k: common.get(k) for k in ("device", "precision", "seed", "compile", "report_to")
               if common.get(k) is not None}
    _print_warnings(config)
    P.build(DataSettings, data, "command line", cli=True)  # name the option in errors
    P.build(RuntimeSettings, runtime, "command line", cli=True)
    config.data = P.build(DataSettings, {**P.to_dict(config.data), **data}, "command line")
    config.runtime = P.build(RuntimeSettings, {**P.to_dict(config.runtime), **runtime},
                             "command line")
    from theseus_cli.glue import TRAINABLE_TASKS, get_task
    from theseus_cli.multitask import run_tasks

    if common.get("glue_all"):
        tasks = list(TRAINABLE_TASKS)
    elif common.get("task"):
        tasks = list(dict.fromkeys(get_task(t).name for t in common["task"]))
    else:
        tasks = list(config.tasks)
    stage_cls = registry.stage(stage)
    if common.get("num_processes") is not None and _relaunch(
            config, stage, tasks, common["num_processes"], common["ctx"]):
        return
    options = dict(overrides=overrides, plugin_overrides=plugin_overrides,
                   pins=parse_pins(common.get("pins"), stage_cls),
                   no_upstream=bool(common.get("no_upstream")), force=bool(common.get("force")),
                   restart=bool(common.get("restart")))
    from theseus_cli.pipeline import is_main_process
    from theseus_cli.seeds import parse_seeds

    if common.get("seeds") and common.get("seed") is not None:
        raise ConfigError("--seed and --seeds: give one (--seeds 3 starts at runtime.seed; "
                          "--seeds 1,2,3 lists them)")
    seeds = (parse_seeds(common["seeds"], config.runtime.seed) if common.get("seeds")
             else [config.runtime.seed])
    from theseus_cli.contracts import Stage

    if stage_cls.aggregate is not Stage.aggregate and not options["pins"]:
        seeds = seeds[:1]  # an aggregating stage (evaluate) covers every seed's versions at once
    results = []
    for seed in seeds:
        if len(seeds) > 1:
            console.rule(f"seed {seed} ({seeds.index(seed) + 1} of {len(seeds)})")
        seeded = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, seed=seed))
        results += run_tasks(Pipeline(seeded, console), stage, tasks, options)
    for art in results:
        metrics = art.manifest.get("metrics", {})
        # per-model keys (MODEL:FORMAT:SHAPE:speedup) are in the table the stage printed
        shown = [k for k in metrics if not k.endswith("_parameters") and ":" not in k]
        if shown and len(tasks) == 1 and len(seeds) == 1 and is_main_process():
            console.print("  ".join(f"{k} [bold]{_fmt(metrics[k])}[/]" for k in shown))


def _relaunch(config: Any, stage: str, tasks: list[str], num_processes: int, ctx: Any) -> bool:
    """``--num-processes N``: rerun this command through `accelerate launch` (True), or
    go on in this process (False: N is 1, or this already is one of the N)."""
    from theseus_cli import launch, lock
    from theseus_cli.artifacts import ArtifactStore

    if not launch.check_num_processes(num_processes):
        return False
    store = ArtifactStore(config.artifacts_dir)
    for task in tasks:  # a locked stage fails now, before any worker starts
        lock.probe(store.stage_dir(task, stage) / lock.LOCK_NAME, f"{task}/{stage}")
    argv = launch.command_line(ctx)
    code = launch.relaunch(num_processes, config.runtime.precision, argv, echo=console.print)
    if code:
        raise typer.Exit(code)
    return True


def _fmt(v: Any) -> str:
    if isinstance(v, float) and 0 < abs(v) < 1e-3:
        return f"{v:.2g}"  # a parity difference of 3e-06 is not 0.0000
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def register_stage_commands() -> None:
    """Add one command per working stage plugin; report broken plugins on stderr."""
    for name, stage_cls in registry.stages().items():
        if not getattr(stage_cls, "command", True):
            continue  # run by other stages (the GLUE table)
        app.command(name=name, help=stage_cls.help, epilog=DEFAULTS_NOTE)(
            handle_errors(stage_command(stage_cls)))
    for p in registry.broken():
        err_console.print(f"[yellow]warning: plugin {p.name!r} ({p.group}, {p.distribution}) "
                          f"failed to load and is skipped: {p.error}[/]")


register_stage_commands()


def main() -> None:
    """Console-script entry point."""
    _raise_on_sigterm()
    app()
