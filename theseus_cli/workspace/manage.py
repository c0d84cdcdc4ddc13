"""Workspace-level operations behind ``theseus init`` and ``theseus status``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from theseus_cli.data.glue import TASKS, get_task
from theseus_cli.data.hub_files import HUB_PREFIX
from theseus_cli.errors import ArtifactError, ConfigError, WorkspaceError
from theseus_cli.plugin import registry
from theseus_cli.store.artifacts import ArtifactStore
from theseus_cli.store.integrity import problems_by_version
from theseus_cli.workspace.config import (
    CONFIG_NAME,
    WorkspaceConfig,
    find_workspace,
    load_config,
    parse_config,
)
from theseus_cli.workspace.seeds import stats, variant_key
from theseus_cli.workspace.template import render

# Settings `theseus init` writes for the embedded 6-layer model: the default recipe,
# chosen on real MRPC (docs/results/baselines-mrpc-rte.md; runs/recipe-sweep-mrpc.sh
# and runs/methods-mrpc-seeds.sh): module replacing at a peak learning rate of 3e-4
# (5e-5 left the successor at the majority class), with distillation from the teacher
# (α = 0.5, T = 2) in replace and finetune-successor (median of 3 seeds 79.64 against
# 78.33 with the task loss only, the paper's). The linear scheduler reaches
# p = 1 at its default 65% of the replace steps (step 299 of MRPC's 460; the paper's
# grid, {1000, ..., 30000} steps, is for BERT-base on a GPU), and the anti-curriculum
# scheduler mirrors the same ramp (the paper's section 5.3 uses the curriculum's b and k
# for both). finetune-successor keeps its default 2e-5; the teacher and the truncate,
# distill, pkd and layerdrop baselines their default learning rate by size (1e-4 at
# hidden 384), the teacher with early stopping.
EMBEDDED_PRESET = {"replace": {"learning_rate": 3e-4, "distill_weight": 0.5},
                   "finetune-successor": {"distill_weight": 0.5}}


def init_workspace(directory: Path, tasks: list[str] | None = None, model: str = "embedded",
                   glue_dir: Path | None = None, recipe: Path | None = None,
                   force: bool = False, user_task: dict[str, Any] | None = None,
                   adopt: bool = False) -> Path:
    """Create ``directory`` with a commented ``theseus.yaml``; return its path.

    ``glue_dir`` (given relative to the current directory) is written relative
    to the workspace. A ``recipe`` (a theseus.yaml from ``workspaces/``) sets the
    values; ``tasks``/``model``/``glue_dir`` given here override it. ``tasks``
    defaults to ``["MRPC"]``; several tasks make a multi-task workspace. ``user_task`` (the
    settings of ``tasks.NAME``: ``train``, ``test``, ``text_columns``, ...; file paths
    relative to the current directory) declares the user's own task, named by the one
    task of ``tasks``; its files are written relative to the workspace. ``adopt``: ``model``
    is already fine-tuned on the task and becomes the teacher without training.

    Raises:
        WorkspaceError: theseus.yaml exists and ``force`` is not set.
        ConfigError / UnknownNameError: invalid task, recipe or values; ``user_task`` with
            both a ``validation`` file and a ``validation_split``.
    """
    directory = Path(directory).expanduser()
    path = directory / CONFIG_NAME
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(f"{directory} exists and is a file, not a directory; choose a new "
                             "or an existing directory for the workspace")
    if path.exists() and not force:
        raise WorkspaceError(f"{path} already exists; use --force to overwrite it")
    overrides: dict = {}
    if recipe is not None:
        recipe_file = recipe / CONFIG_NAME if recipe.is_dir() else recipe
        if not recipe_file.is_file():
            raise ConfigError(f"--recipe {recipe}: no {CONFIG_NAME} there")
        doc = yaml.safe_load(recipe_file.read_text(encoding="utf-8")) or {}
        parse_config(directory.resolve(), doc, source=str(recipe_file))  # validate first
        overrides = {k: v for k, v in doc.items() if isinstance(v, dict)}
        tasks = tasks or doc.get("task")
        model = doc.get("model", model) if model == "embedded" else model
        if glue_dir is None and doc.get("data", {}).get("glue_dir"):
            glue_dir = (recipe_file.parent / doc["data"]["glue_dir"]).resolve()
    user_tasks: dict[str, dict[str, Any]] = {}
    if user_task is not None and user_task.get("validation") is not None \
            and user_task.get("validation_split") is not None:
        raise ConfigError(f"--validation {user_task['validation']} and --validation-split "
                          f"{user_task['validation_split']}: give one (a validation file, or "
                          "the share of --train to hold out)")
    if user_task is not None:
        if not tasks or len(tasks) != 1:
            raise ConfigError("--train: name your task with one --task NAME (e.g. --task "
                              "banking77)")
        user_tasks[tasks[0]] = {
            k: (os.path.relpath(Path(v).expanduser().resolve(), directory.resolve())
                if k in ("train", "validation", "test") and v
                and not str(v).startswith(HUB_PREFIX) else str(v) if isinstance(v, Path) else v)
            for k, v in user_task.items() if v is not None}
        names = list(tasks)
    else:
        names = [get_task(t).name
                 for t in (tasks if isinstance(tasks, list) else [tasks or "MRPC"])]
    task_value: str | list[str] = names[0] if len(names) == 1 else list(dict.fromkeys(names))
    glue_text = None
    if glue_dir is not None:
        glue_text = os.path.relpath(Path(glue_dir).expanduser().resolve(), directory.resolve())
    if recipe is None and model == "embedded":
        overrides = {k: dict(v) for k, v in EMBEDDED_PRESET.items()}
    overrides.setdefault("data", {}).pop("glue_dir", None)
    if adopt:
        overrides.setdefault("finetune-teacher", {})["adopt"] = True
    text = render(model, task_value, glue_text, overrides, user_tasks)
    parse_config(directory.resolve(), yaml.safe_load(text))  # what we write must validate
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{CONFIG_NAME}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise WorkspaceError(f"cannot write the workspace {directory}: {e.strerror} "
                             f"({e.filename})") from None
    return path


def _metric_text(metrics: dict, names: tuple[str, ...]) -> str:
    shown = []
    for k in names:
        if k in metrics and isinstance(metrics[k], (int, float)):
            v = metrics[k]
            shown.append(f"{k} {v:.2f}" if k in ("retention", "speedup") else f"{k} {100 * v:.2f}"
                         if abs(v) <= 1 else f"{k} {v:.4g}")
    return ", ".join(shown)


def _seed_summary(store: ArtifactStore, versions: list, latest, names: tuple[str, ...]) -> str:
    """``score median 81.2, mean 80.9 ± 0.6 over 3 seeds`` for the latest version's variant
    (its versions that differ only by seed), when it has several seeds."""
    if not names:
        return ""
    try:
        key = variant_key(store, latest)
        same: dict = {}
        for art in versions:
            if variant_key(store, art) == key:
                same[art.manifest.get("config", {}).get("runtime", {}).get("seed")] = art
    except (ArtifactError, KeyError):
        return ""
    if len(same) < 2:
        return ""
    name = names[0]
    s = stats([a.manifest.get("metrics", {}).get(name) for a in same.values()])
    if s["median"] is None:
        return ""
    scale = 100 if abs(s["median"]) <= 1 else 1
    return (f"{name} median {scale * s['median']:.2f}, mean {scale * s['mean']:.2f} ± "
            f"{scale * s['std']:.2f} over {s['n']} seeds")


def _listed(task: str, stage: str, versions: list, declared: bool = True) -> bool:
    """Whether ``theseus status`` has a row for ``stage`` of ``task``: the pseudo-task GLUE
    has the cross-task table only (and the ``evaluate`` versions in which workspaces from
    before the ``glue-table`` stage kept it); a task of the workspace (``declared``) has
    every other stage, and its tables when it filed them (a user's own task); any other
    folder of the store (the tables of several own tasks, ``a+b``) what it holds."""
    if task == "GLUE":
        return stage == "glue-table" or bool(versions)
    if not declared:
        return bool(versions)
    return stage != "glue-table" or bool(versions)


def status_rows(workspace: Path | None) -> tuple[list[tuple[str, ...]], WorkspaceConfig]:
    """Rows of ``theseus status``: one per task and stage, in pipeline order."""
    config = load_config(find_workspace(workspace))
    store = ArtifactStore(config.artifacts_dir)
    stages = registry.stages()
    rows = []
    tasks = list(dict.fromkeys([*config.tasks, *store.tasks()]))
    for task in tasks:
        for name, cls in stages.items():
            versions = store.versions(task, name)
            if not _listed(task, name, versions, declared=task in config.tasks):
                continue
            staging = store.staging_dirs(task, name)
            if not versions:
                rows.append((task, name, "0", "—", "", "",
                             f"{len(staging)} incomplete run(s)" if staging else "not run"))
                continue
            latest = versions[-1]
            corrupted = problems_by_version(store, task, name)
            marks = ", ".join(f"{v} CORRUPTED: {'; '.join(p)}" for v, p in corrupted.items())
            try:
                m = latest.manifest
            except ArtifactError:
                m = {}
            note = _metric_text(m.get("metrics", {}), cls.summary_metrics)
            seeds = _seed_summary(store, versions, latest, cls.summary_metrics)
            if seeds:
                note = f"{note}; {seeds}" if note else seeds
            if marks:
                note = f"[red]{marks}[/] (`theseus verify`)" + (f"; {note}" if note else "")
            if task == "GLUE":
                missing = ", ".join(m.get("info", {}).get("missing", {}))
                note = (f"method tables, GLUE table; missing: {missing}" if missing else
                        "method tables of every task" if not set(config.tasks) & set(TASKS)
                        else "method tables, GLUE table; missing: none")
            if staging:
                note += f" ({len(staging)} incomplete run(s))"
            rows.append((task, name, str(len(versions)),
                         latest.name + (" [red](corrupted)[/]" if latest.name in corrupted else ""),
                         m.get("created_at", "")[:19].replace("T", " "),
                         str(m.get("timings", {}).get("seconds", "")), note))
    return rows, config
