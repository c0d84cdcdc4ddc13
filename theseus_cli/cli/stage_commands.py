"""Stage commands, built from the registered stage plugins: every field of a stage's
``Params`` becomes an option, so a third-party stage gets a command of its own."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Optional

import typer

from theseus_cli.cli.common import (
    console,
    err_console,
    handle_errors,
    print_warnings,
    quiet_libraries,
)
from theseus_cli.data.glue import TRAINABLE_TASKS
from theseus_cli.errors import (
    ConfigError,
)
from theseus_cli.plugin import Stage, registry, selector_of
from theseus_cli.plugin import params as P
from theseus_cli.store import lock
from theseus_cli.store.artifacts import ArtifactStore
from theseus_cli.train import launch
from theseus_cli.workspace.config import (
    DataSettings,
    RuntimeSettings,
    find_workspace,
    load_config,
)
from theseus_cli.workspace.multitask import run_tasks
from theseus_cli.workspace.pipeline import Pipeline
from theseus_cli.workspace.run_facts import is_main_process
from theseus_cli.workspace.seeds import parse_seeds


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
    _opt("threads", Optional[int], "CPU threads of PyTorch's operators (runtime.threads); "
         "default: one per core", "--threads"),
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
#: the COMMON options that override ``runtime:`` settings of theseus.yaml
RUNTIME_OPTIONS = ("device", "precision", "seed", "compile", "report_to", "threads")


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
            selector = selector_of(f.name)
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
    quiet_libraries()
    config = load_config(find_workspace(common.get("workspace")))
    data = {k: common.get(k) for k in ("max_train_samples", "max_eval_samples")
            if common.get(k) is not None}
    if common.get("glue_dir") is not None:
        data["glue_dir"] = str(Path(common["glue_dir"]).expanduser().resolve())
    runtime = {k: common.get(k) for k in RUNTIME_OPTIONS if common.get(k) is not None}
    print_warnings(config)
    P.build(DataSettings, data, "command line", cli=True)  # name the option in errors
    P.build(RuntimeSettings, runtime, "command line", cli=True)
    config.data = P.build(DataSettings, {**P.to_dict(config.data), **data}, "command line")
    config.runtime = P.build(RuntimeSettings, {**P.to_dict(config.runtime), **runtime},
                             "command line")

    if common.get("glue_all"):
        tasks = list(TRAINABLE_TASKS)
    elif common.get("task"):
        tasks = list(dict.fromkeys(config.task_definition(t).name for t in common["task"]))
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

    if common.get("seeds") and common.get("seed") is not None:
        raise ConfigError("--seed and --seeds: give one (--seeds 3 starts at runtime.seed; "
                          "--seeds 1,2,3 lists them)")
    seeds = (parse_seeds(common["seeds"], config.runtime.seed) if common.get("seeds")
             else [config.runtime.seed])

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


def register_stage_commands(app: typer.Typer) -> None:
    """Add one command per working stage plugin; report broken plugins on stderr."""
    for name, stage_cls in registry.stages().items():
        if not getattr(stage_cls, "command", True):
            continue  # run by other stages (the GLUE table)
        app.command(name=name, help=stage_cls.help, epilog=DEFAULTS_NOTE)(
            handle_errors(stage_command(stage_cls)))
    for p in registry.broken():
        err_console.print(f"[yellow]warning: plugin {p.name!r} ({p.group}, {p.distribution}) "
                          f"failed to load and is skipped: {p.error}[/]")
