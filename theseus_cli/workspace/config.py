"""The workspace configuration file ``theseus.yaml``: load, validate, resolve.

Precedence, as in Accelerate: built-in defaults < ``theseus.yaml`` < CLI options.
Every section is a ``Params`` dataclass (``theseus_cli.plugin.param``), so validation,
``--help`` and the commented file ``theseus init`` writes share one source.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from theseus_cli.data.glue import get_task
from theseus_cli.data.user_task import UserTask, task_from_settings
from theseus_cli.errors import ConfigError, UnknownNameError, WorkspaceError
from theseus_cli.model.loading import EMBEDDED_MODEL
from theseus_cli.plugin import param, plugin_choices, registry
from theseus_cli.plugin import params as P

CONFIG_NAME = "theseus.yaml"

#: where experiment trackers (--report-to) write, inside the workspace
TRACKING_DIR = "tracking"


@dataclass
class DataSettings:
    """Where task data comes from and how it is tokenised."""

    glue_dir: str | None = param(
        None, "directory in the original GLUE TSV layout (relative to the workspace); "
              "null: $THESEUS_GLUE_DIR, else the Hugging Face hub (nyu-mll/glue)")
    max_seq_length: int | None = param(None, "maximum tokens per example, pairs truncated; "
                                             "null: the paper's (256 for QNLI, else 128)",
                                      min=8, max=8192)
    max_train_samples: int | None = param(
        None, "keep only the first N training examples (quick runs); null: all", min=1)
    max_eval_samples: int | None = param(
        None, "keep only the first N dev examples (quick runs); null: all", min=1)
    selection: str = param(
        "dev", "where training stages keep their best checkpoint and sweeps pick their best "
               "configuration: dev (the paper's protocol) or holdout, a fixed slice of the "
               "training set (holdout_fraction) held out of training, so dev stays an unbiased "
               "report", choices=("dev", "holdout"))
    holdout_fraction: float = param(
        0.1, "with selection: holdout, the fraction of the training set held out (the same "
             "rows for every seed and stage)", min=0.01, max=0.5)

    @property
    def selection_split(self) -> str:
        """The selection split as stage output names it (:func:`split_name`)."""
        return split_name(self.selection)


def split_name(selection: str) -> str:
    """How output names the split a ``data.selection`` (or ``sweep --select``) value
    selects on: ``"dev"``, or ``"held-out"`` for ``holdout``; manifests keep their
    ``dev_*`` keys for either."""
    return "held-out" if selection == "holdout" else "dev"


@dataclass
class RuntimeSettings:
    """The shared PyTorch runtime (built on Accelerate) every stage runs in."""

    device: str = param("auto", "device to run on; auto picks cuda, then mps, then cpu",
                        choices=("auto", "cuda", "mps", "cpu"))
    precision: str = param("no", "mixed precision: no (fp32), fp16 (loss scaling, GPU) or bf16",
                           choices=("no", "fp16", "bf16"))
    seed: int = param(42, "seed of every random number generator of a run", min=0,
                      max=2**32 - 1)
    gradient_accumulation_steps: int = param(
        1, "micro-batches per optimizer step (effective batch = batch_size x this)", min=1)
    compile: bool = param(False, "torch.compile the models (inductor backend): slower start, "
                                 "faster steps on a GPU")
    report_to: str = param("none", "experiment trackers (Accelerate's), comma-separated: none, "
                                   "tensorboard, mlflow, wandb; files under tracking/",
                           fingerprint=False)
    threads: int | None = param(None, "CPU threads of PyTorch's operators per process; null: "
                                      "one per core (give each of two runs side by side half)",
                                min=1, fingerprint=False)


@dataclass
class WorkspaceConfig:
    """A loaded, validated ``theseus.yaml``.

    Attributes:
        root: the workspace directory (holds theseus.yaml and artifacts/).
        model: predecessor source: ``embedded``, a hub id, or a local directory.
        tasks: the tasks this workspace covers (GLUE spelling, or the name of a task of
            ``user_tasks``); commands without ``--task`` run each of them, in this order.
        user_tasks: the user's own tasks (``tasks:`` in theseus.yaml), by name.
        stages_raw: stage name -> the validated raw section from the file.
    """

    root: Path
    model: str = EMBEDDED_MODEL
    tasks: list[str] = field(default_factory=lambda: ["MRPC"])
    data: DataSettings = field(default_factory=DataSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    stages_raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    user_tasks: dict[str, Any] = field(default_factory=dict)

    def task_definition(self, name: Any) -> Any:
        """The task called ``name``: a user's task of this workspace, else a GLUE task
        (any spelling :func:`~theseus_cli.data.glue.get_task` accepts); a task object is
        returned unchanged.

        Raises:
            UnknownNameError: no such task (lists the GLUE names).
        """
        if isinstance(name, str) and name in self.user_tasks:
            return self.user_tasks[name]
        return get_task(name)

    @property
    def task(self) -> str:
        """The workspace's first (default) task."""
        return self.tasks[0]

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    def glue_dir(self) -> Path | None:
        """The GLUE directory, resolved against the workspace root; None = env/hub."""
        if self.data.glue_dir is None:
            return None
        p = Path(os.path.expanduser(self.data.glue_dir))
        return p if p.is_absolute() else (self.root / p).resolve()

    def stage_params(self, stage: str, overrides: dict[str, Any] | None = None,
                     plugin_overrides: dict[str, dict[str, Any]] | None = None) -> Any:
        """Resolve a stage's Params: defaults < theseus.yaml < ``overrides``.

        Args:
            stage: registered stage name.
            overrides: CLI values (None values are ignored: option not given).
            plugin_overrides: ``selector field -> {key: value}`` from
                ``--scheduler-arg`` style options, applied to the selected plugin.

        Raises:
            ConfigError / UnknownNameError: on any invalid key or value.
        """
        cls = registry.stage(stage).Params
        fields, hints = {f.name: f for f in dataclasses.fields(cls)}, P.field_types(cls)
        for name, value in (overrides or {}).items():  # named as the user gave them
            if value is not None and name in fields:
                option = f"--{name.replace('_', '-')}"
                P.check_value(fields[name], P.coerce(value, hints[name], option), option)
        raw = {k: v for k, v in self.stages_raw.get(stage, {}).items()}
        raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
        built = validate_section(cls, raw, f"{stage}")
        tables = {c.selector: c.table for c in plugin_choices(cls)}
        for selector, args in (plugin_overrides or {}).items():
            if not args:
                continue
            group_field = tables[selector]
            selected = getattr(built, selector)
            table = dict(getattr(built, group_field))
            table[selected] = {**table.get(selected, {}), **args}
            raw[group_field] = table
            built = validate_section(cls, raw, f"{stage} (--{selector}-arg)")
        return built


def plugin_params(params: Any, selector: str) -> tuple[type, Any]:
    """The selected plugin class and its resolved Params for a stage's ``selector``.

    E.g. ``plugin_params(replace_params, "scheduler")`` ->
    ``(LinearScheduler, LinearScheduler.Params(b=0.3, ...))``.
    """
    choice = next(c for c in plugin_choices(params) if c.selector == selector)
    name = getattr(params, selector)
    cls = registry.get(choice.group, name)
    args = getattr(params, choice.table).get(name, {})
    return cls, P.build(cls.Params, args, f"{selector} {name}")


def validate_section(cls: type, raw: dict[str, Any], where: str,
                     warnings: list[str] | None = None) -> Any:
    """Build a Params dataclass, also validating plugin-argument tables.

    Args:
        warnings: when given (loading a workspace), a plugin that is not installed
            is a warning appended here, so that ``status`` and other stages still
            work after it was uninstalled; when None (running the stage), selecting
            it is an error, and arguments of other, absent plugins are ignored.

    Raises:
        ConfigError: bad keys or values; an unknown selected plugin (strict mode).
    """
    built = P.build(cls, raw, where)
    for choice in plugin_choices(cls):
        group, selector = choice.group, choice.selector
        selected = getattr(built, selector, None)
        table = getattr(built, choice.table) or {}
        for name, args in table.items():
            if name not in registry.available(group) and name != selected:
                if warnings is not None:
                    warnings.append(f"{where}.{choice.table}.{name}: {_missing(group, name)}; its "
                                    "arguments are ignored")
                continue
            if args is not None and not isinstance(args, dict):
                raise ConfigError(f"{where}.{choice.table}.{name}: expected a mapping, got {args!r}")
            if name in registry.available(group):
                P.build(registry.get(group, name).Params, args or {}, f"{where}.{choice.table}.{name}")
        if selected is not None:
            if warnings is not None and selected not in registry.available(group):
                warnings.append(f"{where}.{selector}: {_missing(group, selected)}; running this "
                                "stage needs another choice")
                continue
            _plugin(group, selected, f"{where}.{selector}")  # lists the available
    return built


def _missing(group: str, name: str) -> str:
    """``"scheduler 'cosine' is not installed (available: constant, linear)"``."""
    kind = registry.KIND.get(group, "plugin")
    broken = {p.name: p.error for p in registry.broken()}
    state = f"failed to load ({broken[name]})" if name in broken else "is not installed"
    return f"{kind} {name!r} {state} (available: {', '.join(registry.available(group))})"


def _plugin(group: str, name: str, where: str) -> type:
    """``registry.get``, with an unknown name reported where it was written."""
    try:
        return registry.get(group, name)
    except UnknownNameError as e:
        raise ConfigError(f"{where}: {e}") from None


TOP_LEVEL = ("model", "task", "tasks", "data", "runtime")


def parse_config(root: Path, doc: Any, source: str = CONFIG_NAME) -> WorkspaceConfig:
    """Validate a parsed YAML document into a :class:`WorkspaceConfig`.

    Raises:
        ConfigError: unknown keys (listing accepted ones) and bad values.
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(doc).__name__}")
    warnings: list[str] = []
    stage_names = {n for n, c in registry.stages().items() if getattr(c, "command", True)}
    accepted = set(TOP_LEVEL) | stage_names
    broken_stages = {p.name for p in registry.broken() if p.group == registry.STAGE_GROUP}
    for key in sorted(set(doc) & broken_stages - accepted):
        warnings.append(f"{source}: section {key!r} belongs to {_missing(registry.STAGE_GROUP, key)}; "
                        "it is ignored")
    unknown = sorted(set(doc) - accepted - broken_stages)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; accepted: "
                          + ", ".join(sorted(accepted)))
    model = P.coerce(doc.get("model", EMBEDDED_MODEL), str, f"{source}: model")
    user_tasks = parse_user_tasks(root, doc.get("tasks"), source)
    raw_tasks = doc.get("task", list(user_tasks) or "MRPC")
    raw_tasks = raw_tasks if isinstance(raw_tasks, list) else [raw_tasks]
    if not raw_tasks:
        raise ConfigError(f"{source}: task: an empty list; give at least one GLUE task")
    tasks = []
    for item in raw_tasks:
        item = P.coerce(item, str, f"{source}: task")
        try:
            name = item if item in user_tasks else get_task(item).name
        except UnknownNameError as e:
            mine = f" or one of tasks: ({', '.join(user_tasks)})" if user_tasks else ""
            raise ConfigError(f"{source}: task: {e}{mine}") from None
        if name not in tasks:
            tasks.append(name)
    data = P.build(DataSettings, doc.get("data"), f"{source}: data")
    runtime = P.build(RuntimeSettings, doc.get("runtime"), f"{source}: runtime")
    stages_raw: dict[str, dict[str, Any]] = {}
    for name in stage_names & set(doc):
        section = doc[name] or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: {name}: expected a mapping, got {section!r}")
        validate_section(registry.stage(name).Params, section, f"{source}: {name}", warnings)
        stages_raw[name] = section
    return WorkspaceConfig(root=root, model=model, tasks=tasks, data=data,
                           runtime=runtime, stages_raw=stages_raw, warnings=warnings,
                           user_tasks=user_tasks)


def parse_user_tasks(root: Path, raw: Any, source: str) -> dict[str, UserTask]:
    """The ``tasks:`` section: the user's own tasks by name (none when absent).

    Raises:
        ConfigError: not a mapping, a name that is a GLUE task's, or a bad task section.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: tasks: expected a mapping of task name -> its files "
                          f"and columns, got {raw!r}")
    out = {}
    for name, section in raw.items():
        name = str(name)
        try:
            glue = get_task(name).name
        except UnknownNameError:
            glue = None
        if glue is not None:
            raise ConfigError(f"{source}: tasks: {name!r} is the GLUE task {glue}; give your "
                              "task another name")
        out[name] = task_from_settings(name, section, root, f"{source}: tasks.{name}")
    return out


def load_config(root: Path) -> WorkspaceConfig:
    """Load and validate ``root/theseus.yaml``.

    Raises:
        WorkspaceError: the file is missing or is not valid YAML.
        ConfigError: a key or value is invalid.
    """
    path = root / CONFIG_NAME
    if not path.is_file():
        raise WorkspaceError(f"no {CONFIG_NAME} in {root}; create one with `theseus init`")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if doc is None:
        raise ConfigError(f"{path} is empty (no settings at all); write a new one with "
                          f"`theseus init --force {root}` (with the --model, --task and "
                          "--glue-dir you used), or restore it")
    return parse_config(root.resolve(), doc, source=str(path))


def find_workspace(explicit: Path | None = None, start: Path | None = None) -> Path:
    """The workspace root: ``explicit``, else the nearest directory holding
    theseus.yaml from ``start`` (default: the current directory) upward.

    Raises:
        WorkspaceError: none found (names where the search started).
    """
    if explicit is not None:
        root = Path(explicit).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file():
            raise WorkspaceError(f"--workspace {explicit}: no {CONFIG_NAME} there; "
                                 f"create one with `theseus init {explicit}`")
        return root
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return d
    raise WorkspaceError(f"no theseus workspace here: no {CONFIG_NAME} in {here} or any parent; "
                         "run `theseus init DIR` or pass --workspace PATH")
