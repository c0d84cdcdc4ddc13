"""The search space of ``theseus sweep``: the searched parameters (``--param``), the
seeds (``--seeds``), their parsing and validation against a stage's Params, and the
``theseus`` command line of one combination."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

from theseus_cli.errors import ConfigError
from theseus_cli.plugin import params as P
from theseus_cli.plugin import plugin_choices, registry, selector_of
from theseus_cli.workspace import seeds as seeding
from theseus_cli.workspace.config import RuntimeSettings, WorkspaceConfig

SWEEP_STAGE = "sweep"  # artifacts/<task>/sweep/vN, and the default study storage beside them
STUDY_DB = "study.db"
SAMPLERS = ("grid", "random", "tpe")
SELECTIONS = ("dev", "holdout")
METRIC = "score"  # the stage's dev metric the objective reads (paper's per-task number)
HEARTBEAT_SECONDS = 60  # Optuna heartbeat of a running trial (seconds)
GRACE_SECONDS = 600  # a trial without a heartbeat for this long is stale (seconds)
MAX_DUPLICATES = 25  # random/tpe: stop after this many already-finished proposals in a row
STORAGE_FORMS = ("sqlite:///PATH/study.db", "postgresql://USER@HOST/DB",
                 "mysql+pymysql://USER@HOST/DB")


# ------------------------------------------------------------------ the space
@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter.

    Attributes:
        name: a field of the stage's Params (``learning_rate``), or
            ``SELECTOR.ARG`` for an argument of the selected plugin
            (``scheduler.b``).
        values: the discrete values (typed), for a list ``NAME=V1,V2``.
        low / high: the bounds of a range ``NAME=LOW:HIGH`` (inclusive).
        log: sample the range log-uniformly (``NAME=LOW:HIGH:log``).
        kind: ``"choice"`` (a list), ``"float"`` or ``"int"`` (a range).
    """

    name: str
    kind: str = "choice"
    values: tuple[Any, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.kind != "choice"

    def describe(self) -> str:
        """As written: ``learning_rate=1e-05,2e-05`` or ``learning_rate=1e-05:0.001:log``."""
        if self.is_range:
            bounds = f"{show_value(self.low)}:{show_value(self.high)}"
            return f"{self.name}={bounds}" + (":log" if self.log else "")
        return f"{self.name}=" + ",".join(show_value(v) for v in self.values)

    def to_json(self) -> dict[str, Any]:
        if self.is_range:
            return {"name": self.name, "kind": self.kind, "low": self.low, "high": self.high,
                    "log": self.log}
        return {"name": self.name, "kind": "choice", "values": list(self.values)}

    def probes(self) -> list[Any]:
        """Values checked before any trial runs: every listed value, or both bounds."""
        return list(self.values) if not self.is_range else [self.low, self.high]


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep, ready to run (see :func:`plan_sweep`).

    Attributes:
        stage / task: what is searched, on which GLUE task.
        space: the searched parameters, in the order given.
        seeds: the seeds every combination runs with (``runtime.seed`` of each run).
        sampler: ``grid``, ``random`` or ``tpe``.
        trials: how many trials the study should finish (the grid size for a grid).
        storage: the Optuna RDB URL.
        study: the Optuna study name.
        select: where the best configuration is selected (``dev``).
        grid: every combination, in order (grid sampler only).
    """

    stage: str
    task: str
    space: tuple[ParamSpec, ...]
    seeds: tuple[int, ...]
    sampler: str
    trials: int
    storage: str
    study: str
    select: str
    grid: tuple[dict[str, Any], ...] = ()
    config_digest: str = ""

    def space_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.space]


def show_value(v: Any) -> str:
    """A value as written on a command line (``2e-05``, ``0.1``, ``true``, ``null``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return repr(v) if isinstance(v, float) else str(v)


def combo_text(combo: dict[str, Any]) -> str:
    return " ".join(f"{k}={show_value(v)}" for k, v in combo.items())


def combo_key(combo: dict[str, Any]) -> str:
    """A canonical identity of a combination (for skipping finished ones)."""
    return json.dumps({k: combo[k] for k in sorted(combo)}, sort_keys=True, default=str)


# ------------------------------------------------------------- name lookup
def plugin_selectors(params_cls: type) -> dict[str, str]:
    """``selector -> plugin group`` of a stage's Params (``scheduler -> theseus.schedulers``)."""
    return {c.selector: c.group for c in plugin_choices(params_cls)}


def _sweepable_fields(params_cls: type) -> dict[str, dataclasses.Field]:
    """Fields a sweep may vary: scalar, settable from the command line, and part of
    the fingerprint (``save_every`` and the like do not change a result)."""
    hints = P.field_types(params_cls)
    out = {}
    for f in dataclasses.fields(params_cls):
        if f.metadata.get("plugin_group") or not f.metadata.get("cli", True):
            continue
        if not f.metadata.get("fingerprint", True):
            continue
        if P.base_type(hints[f.name])[0] in (int, float, str, bool):
            out[f.name] = f
    return out


def _plugin_args(group: str) -> dict[str, dict[str, dataclasses.Field]]:
    """``plugin name -> {argument -> field}`` for every available plugin of ``group``."""
    return {name: {f.name: f for f in dataclasses.fields(registry.get(group, name).Params)}
            for name in registry.available(group)}


def accepted_names(stage: str) -> list[str]:
    """Every name ``--param`` accepts for ``stage``: its sweepable Params fields and
    ``SELECTOR.ARG`` for each argument of each available plugin."""
    cls = registry.stage(stage).Params
    names = list(_sweepable_fields(cls))
    for selector, group in plugin_selectors(cls).items():
        args = sorted({a for fields in _plugin_args(group).values() for a in fields})
        names += [f"{selector}.{a}" for a in args]
    return names


def resolve_name(stage: str, raw: str) -> str:
    """``learning-rate`` -> ``learning_rate``; ``scheduler.steps-to-one`` ->
    ``scheduler.steps_to_one``, checked against the stage.

    Raises:
        ConfigError: not a parameter of the stage (lists the accepted names).
    """
    cls = registry.stage(stage).Params
    name = raw.strip().replace("-", "_")
    accepted = accepted_names(stage)
    if name in accepted:
        return name
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hint = ""
    if name == "seed":
        hint = " (seeds are given with --seeds)"
    elif name in fields and fields[name].metadata.get("plugin_group"):
        hint = f" (search a {selector_of(name)}'s arguments as {selector_of(name)}.ARG)"
    elif name in fields and not fields[name].metadata.get("fingerprint", True):
        hint = " (it does not change a run's result, only how it is checkpointed)"
    elif name in fields:
        hint = " (only scalar parameters can be searched)"
    raise ConfigError(f"--param {raw}: {stage} has no searchable parameter {raw.strip()!r}"
                      f"{hint}; accepted: {', '.join(accepted)}")


def _field_of(config: WorkspaceConfig, stage: str, name: str,
              selector_values: list[str]) -> tuple[dataclasses.Field, Any]:
    """The dataclass field (and its type) that ``name`` sets.

    For ``SELECTOR.ARG`` the field of the first plugin among ``selector_values``
    (the searched or configured choices) that has the argument.
    """
    cls = registry.stage(stage).Params
    if "." not in name:
        return next(f for f in dataclasses.fields(cls) if f.name == name), \
            P.field_types(cls)[name]
    selector, arg = name.split(".", 1)
    group = plugin_selectors(cls)[selector]
    available = _plugin_args(group)
    for plugin in selector_values:
        if plugin in available and arg in available[plugin]:
            plugin_cls = registry.get(group, plugin).Params
            return available[plugin][arg], P.field_types(plugin_cls)[arg]
    chosen = ", ".join(selector_values)
    have = sorted({a for p in selector_values for a in available.get(p, {})})
    raise ConfigError(f"--param {name}: the {selector} {chosen} takes no argument {arg!r}; "
                      f"accepted: {', '.join(f'{selector}.{a}' for a in have) or '(none)'}")


# ------------------------------------------------------------------ parsing
def split_param(text: str) -> tuple[str, str]:
    """``"learning_rate=1e-5,2e-5"`` -> ``("learning_rate", "1e-5,2e-5")``.

    Raises:
        ConfigError: no ``=`` or nothing on either side.
    """
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ConfigError(f"--param {text!r}: expected NAME=V1,V2,... (values), NAME=LOW:HIGH "
                          "(a range) or NAME=LOW:HIGH:log (a log-uniform range), e.g. "
                          "learning_rate=1e-5,2e-5 or scheduler.b=0.1,0.3")
    return name.strip(), values.strip()


def _typed(value: Any, f: dataclasses.Field, tp: Any, where: str) -> Any:
    value = P.coerce(value, tp, where)
    P.check_value(f, value, where)
    return value


def parse_spec(config: WorkspaceConfig, stage: str, text: str,
               selector_values: dict[str, list[str]]) -> ParamSpec:
    """One ``--param`` option as a typed :class:`ParamSpec`.

    ``NAME=V1,V2,...`` lists values (each parsed as YAML, then coerced to the
    parameter's type and checked against its bounds and choices);
    ``NAME=LOW:HIGH`` is a uniform range and ``NAME=LOW:HIGH:log`` a log-uniform
    one, over the parameter's type (int or float), bounds included.

    Raises:
        ConfigError: unknown name, a value of the wrong type or out of bounds,
            a malformed range (each names the value and the accepted form).
    """
    raw_name, body = split_param(text)
    name = resolve_name(stage, raw_name)
    choices = selector_values.get(name.split(".", 1)[0], []) if "." in name else []
    f, tp = _field_of(config, stage, name, choices)
    inner, _ = P.base_type(tp)
    where = f"--param {name}"
    if ":" in body and "," not in body:
        parts = body.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip() != "log"):
            raise ConfigError(f"{where}={body}: a range is LOW:HIGH or LOW:HIGH:log, got {body!r}")
        if inner not in (int, float):
            raise ConfigError(f"{where}={body}: a range needs a numeric parameter; {name} is "
                              f"{getattr(inner, '__name__', inner)}: list its values instead "
                              f"({name}=A,B)")
        low, high = (_typed(P.parse_cli_value(p.strip()), f, inner, where) for p in parts[:2])
        log = len(parts) == 3
        if not low < high:
            raise ConfigError(f"{where}={body}: LOW must be below HIGH, got {low!r} and {high!r}")
        if log and low <= 0:
            raise ConfigError(f"{where}={body}: a log-uniform range needs LOW > 0, got {low!r}")
        return ParamSpec(name, kind="int" if inner is int else "float", low=low, high=high,
                         log=log)
    values: list[Any] = []
    for item in body.split(","):
        if not item.strip():
            raise ConfigError(f"{where}={body}: an empty value in the list; expected "
                              "V1,V2,... e.g. 1e-5,2e-5")
        value = _typed(P.parse_cli_value(item.strip()), f, tp, where)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: {item.strip()!r} is not a finite number")
        if value not in values:
            values.append(value)
    return ParamSpec(name, values=tuple(values))


def parse_seeds(text: str | None, base: int) -> tuple[int, ...]:
    """``--seeds``: ``N`` -> the N seeds base, base+1, ...; ``S1,S2,...`` -> those seeds
    (one explicit seed: ``S,``); None -> ``(base,)``. ``base`` is the workspace's
    ``runtime.seed``. Parsed by :func:`theseus_cli.workspace.seeds.parse_seeds` (which caps a
    count at ``MAX_SEEDS``, as for a stage command); a sweep also refuses an empty list.

    Raises:
        ConfigError: not a count from 1 to ``MAX_SEEDS`` or a list of seeds within
            ``runtime.seed``'s bounds, or a seed listed twice.
    """
    text = (text or "1").strip()
    try:
        seeds = seeding.parse_seeds(text, base)
    except ConfigError as e:  # "--seeds: seed -1 is ..." -> "--seeds -1,2: seed -1 is ..."
        msg = str(e)
        if msg.startswith("--seeds:"):
            msg = f"--seeds {text}:{msg[len('--seeds:'):]}"
        raise ConfigError(msg) from None
    if not seeds:  # "," alone
        raise ConfigError(f"--seeds {text!r}: expected a number of seeds (e.g. 3) or a list "
                          "(e.g. 1,2,3)")
    for s in seeds:
        try:
            P.build(RuntimeSettings, {"seed": s}, "--seeds")  # runtime.seed's bounds
        except ConfigError:
            f = next(f for f in dataclasses.fields(RuntimeSettings) if f.name == "seed")
            raise ConfigError(f"--seeds {text}: seed {s} is outside runtime.seed's range "
                              f"[{f.metadata.get('min')}, {f.metadata.get('max')}]") from None
    return tuple(seeds)


def split_combo(combo: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A combination as ``Pipeline.run``'s ``(overrides, plugin_overrides)``:
    ``{"learning_rate": 2e-5, "scheduler.b": 0.1}`` ->
    ``({"learning_rate": 2e-5}, {"scheduler": {"b": 0.1}})``."""
    overrides: dict[str, Any] = {}
    plugin: dict[str, dict[str, Any]] = {}
    for name, value in combo.items():
        if "." in name:
            selector, arg = name.split(".", 1)
            plugin.setdefault(selector, {})[arg] = value
        else:
            overrides[name] = value
    return overrides, plugin


def command_line(stage: str, task: str, combo: dict[str, Any], seed: int) -> str:
    """The ``theseus`` command that runs ``stage`` with ``combo`` and ``seed``, e.g.
    ``theseus replace --task MRPC --learning-rate 2e-05 --scheduler-arg b=0.1 --seed 42``."""
    parts = ["theseus", stage, "--task", task]
    for name, value in combo.items():
        if "." in name:
            selector, arg = name.split(".", 1)
            parts += [f"--{selector}-arg", f"{arg}={show_value(value)}"]
        elif isinstance(value, bool):
            parts.append(f"--{name.replace('_', '-')}" if value else
                         f"--no-{name.replace('_', '-')}")
        else:
            parts += [f"--{name.replace('_', '-')}", show_value(value)]
    parts += ["--seed", str(seed)]
    return " ".join(shlex.quote(p) for p in parts)
