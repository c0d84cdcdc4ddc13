"""Planning a sweep: the whole validation before any trial runs
(:func:`plan_sweep`), the study's storage and its default name."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from typing import Any

from rich.console import Console

from theseus_cli.errors import ConfigError
from theseus_cli.plugin import params as P
from theseus_cli.plugin import registry
from theseus_cli.store.artifacts import ArtifactStore
from theseus_cli.sweep.space import (
    METRIC,
    SAMPLERS,
    SELECTIONS,
    STORAGE_FORMS,
    STUDY_DB,
    SWEEP_STAGE,
    ParamSpec,
    SweepPlan,
    accepted_names,
    combo_key,
    combo_text,
    parse_seeds,
    parse_spec,
    plugin_selectors,
    resolve_name,
    split_combo,
    split_param,
)
from theseus_cli.workspace.config import WorkspaceConfig
from theseus_cli.workspace.pipeline import Pipeline
from theseus_cli.workspace.preflight import check_command


def _config_digest(config: WorkspaceConfig, stage: str) -> str:
    """The workspace settings a result of ``stage`` depends on (its theseus.yaml
    section and its upstream stages'), without machine-specific paths (model
    source, GLUE directory) or the seed and device, so that workspaces on several
    machines sharing one ``--storage`` agree."""
    chain, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name not in chain:
            chain.add(name)
            todo += list(registry.stage(name).inputs)
    doc = {"stages": {k: v for k, v in config.stages_raw.items() if k in chain},
           "data": {k: v for k, v in P.to_dict(config.data).items() if k != "glue_dir"},
           "runtime": {k: v for k, v in P.to_dict(config.runtime).items()
                       if k not in ("seed", "device")}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def default_storage(config: WorkspaceConfig, task: str) -> str:
    """``sqlite:///<workspace>/artifacts/<task>/sweep/study.db`` (directories created)."""
    d = ArtifactStore(config.artifacts_dir).stage_dir(task, SWEEP_STAGE)
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(d / STUDY_DB).resolve()}"


def _check_storage(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except ArgumentError:
        raise ConfigError(f"--storage {url!r} is not a database URL; accepted: an SQLAlchemy "
                          f"URL Optuna can use, e.g. {', '.join(STORAGE_FORMS)}") from None
    return url


def redacted_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _probe_combinations(space: tuple[ParamSpec, ...]) -> list[dict[str, Any]]:
    """Combinations checked before any trial: the whole grid when every parameter
    is a list; else each value / bound with the others at their first, and all
    lows and all highs."""
    if all(not p.is_range for p in space):
        return [dict(zip([p.name for p in space], vals, strict=False))
                for vals in itertools.product(*(p.values for p in space))]
    first = {p.name: p.probes()[0] for p in space}
    out = [first, {p.name: p.probes()[-1] for p in space}]
    for p in space:
        out += [{**first, p.name: v} for v in p.probes()]
    unique = {}
    for c in out:
        unique.setdefault(combo_key(c), c)
    return list(unique.values())


def plan_sweep(config: WorkspaceConfig, stage: str, *, task: str | None, params: list[str],
               seeds: str | None, sampler: str | None, trials: int | None,
               storage: str | None, study: str | None, select: str,
               console: Console | None = None) -> SweepPlan:
    """Validate a sweep completely before any trial runs.

    Every name and value of every ``--param`` is checked against the stage's
    Params, every grid combination (or, with ranges, every listed value and
    both bounds of every range) is resolved with ``config.stage_params`` and
    preflighted like the stage command would be (model, data, the stage's own
    checks).

    Args:
        config: the loaded workspace.
        stage: the stage whose parameters are searched; it must publish a dev ``score``.
        task: GLUE task; None: the workspace's first task.
        params: the ``--param`` texts.
        seeds: ``--seeds`` (see :func:`parse_seeds`); None: one seed, ``runtime.seed``.
        sampler: ``grid`` | ``random`` | ``tpe``; None: grid when every parameter
            is a list, else tpe.
        trials: trials to finish (optimizer-independent count); None: the grid
            size (required with ranges).
        storage: Optuna RDB URL; None: the workspace's SQLite study database.
        study: study name; None: derived from the stage, task, space, seeds,
            sampler and the workspace settings.
        select: ``dev`` or ``holdout``; must match the workspace's ``data.selection``
            (the split every stage keeps its best checkpoint on).

    Raises:
        ConfigError: anything invalid (names the value and the accepted ones).
    """
    cls = registry.stage(stage)  # UnknownNameError lists the stages
    if METRIC not in cls.summary_metrics:
        sweepable = [n for n, c in registry.stages().items() if METRIC in c.summary_metrics]
        raise ConfigError(f"theseus sweep {stage}: {stage} publishes no dev {METRIC!r} metric to "
                          f"select on; accepted stages: {', '.join(sweepable)}")
    if select not in SELECTIONS:
        raise ConfigError(f"--select {select!r}; accepted: {', '.join(SELECTIONS)}")
    if select != getattr(config.data, "selection", "dev"):
        raise ConfigError(
            f"--select {select}: the workspace selects on {config.data.selection} "
            f"(data.selection in theseus.yaml); set data.selection: {select} there (every "
            "stage then keeps its best checkpoint on that split, and the sweep picks on it), "
            "or drop --select")
    task = config.task_definition(task).name if task else config.task
    if not params:
        raise ConfigError(f"theseus sweep {stage}: give at least one --param NAME=V1,V2,...; "
                          f"accepted names: {', '.join(accepted_names(stage))}")
    # plugin choices first: SELECTOR.ARG is typed by the chosen plugin(s)
    base = config.stage_params(stage)
    selector_values = {s: [getattr(base, s)] for s in plugin_selectors(cls.Params)}
    texts = list(params)
    for text in texts:
        raw_name, _ = split_param(text)
        name = resolve_name(stage, raw_name)
        if name in selector_values:
            spec = parse_spec(config, stage, text, {})
            if not spec.is_range:
                selector_values[name] = [str(v) for v in spec.values]
    space: list[ParamSpec] = []
    for text in texts:
        spec = parse_spec(config, stage, text, selector_values)
        if any(p.name == spec.name for p in space):
            raise ConfigError(f"--param {spec.name} is given twice; give each parameter once "
                              f"(its values comma-separated)")
        space.append(spec)
    has_range = any(p.is_range for p in space)
    if sampler is None:
        sampler = "tpe" if has_range else "grid"
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {sampler!r}; accepted: {', '.join(SAMPLERS)}")
    if sampler == "grid" and has_range:
        ranged = next(p for p in space if p.is_range)
        raise ConfigError(f"--sampler grid needs lists of values, but --param {ranged.describe()} "
                          "is a range; list its values (NAME=A,B,C) or use --sampler random|tpe")
    grid_size = math.prod(len(p.values) for p in space) if not has_range else None
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials}: must be at least 1")
    if trials is None:
        if grid_size is None:
            raise ConfigError(f"--sampler {sampler} with a range needs --trials N (how many "
                              "combinations to try)")
        trials = grid_size
    if grid_size is not None and trials > grid_size:
        raise ConfigError(f"--trials {trials}: the search space has only {grid_size} "
                          f"combinations; accepted: 1 to {grid_size}")
    seed_list = parse_seeds(seeds, config.runtime.seed)
    # every combination (or every value and bound) resolves and passes the preflight
    pipeline = Pipeline(config, console or Console(quiet=True))
    for combo in _probe_combinations(tuple(space)):
        overrides, plugin_overrides = split_combo(combo)
        try:
            config.stage_params(stage, overrides, plugin_overrides)
            check_command(pipeline, stage, task, overrides, plugin_overrides, {}, False)
        except ConfigError as e:  # UnknownNameError, ModelSourceError: one message
            raise ConfigError(f"--param combination {combo_text(combo)}: {e}") from None
    digest = _config_digest(config, stage)
    grid = tuple(_probe_combinations(tuple(space))[:trials]) if sampler == "grid" else ()
    if study is not None and not study.strip():
        raise ConfigError("--study '': a study name must not be empty")
    if study is None:
        doc = {"stage": stage, "task": task, "space": [p.to_json() for p in space],
               "seeds": list(seed_list), "sampler": sampler, "config": digest}
        h = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        study = f"{stage}-{task}-{h[:12]}"
    url = _check_storage(storage) if storage else default_storage(config, task)
    return SweepPlan(stage=stage, task=task, space=tuple(space), seeds=seed_list,
                     sampler=sampler, trials=trials, storage=url, study=study.strip(),
                     select=select, grid=grid, config_digest=digest)
