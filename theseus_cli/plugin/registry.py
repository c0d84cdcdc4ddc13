"""Discovery of plugins through entry points, keyed by name.

Built-in and third-party plugins are found the same way: the entry-point
groups named in ``theseus_cli.plugin.base``. A plugin that fails to import (any
exception, ``sys.exit()`` included, but not Ctrl-C), or that is not a subclass
of its contract's base class, is recorded in :func:`broken` and skipped: it
never crashes ``theseus --help``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from theseus_cli.errors import ModelSourceError, UnknownNameError
from theseus_cli.plugin.base import (
    FAMILY_GROUP,
    SCHEDULER_GROUP,
    STAGE_GROUP,
    SUCCESSOR_GROUP,
    TASK_KIND_GROUP,
)
from theseus_cli.plugin.family import ModelFamily
from theseus_cli.plugin.scheduler import Scheduler
from theseus_cli.plugin.stage import Stage
from theseus_cli.plugin.successor import SuccessorBuilder
from theseus_cli.plugin.task_kind import TaskKind

BASES: dict[str, type] = {STAGE_GROUP: Stage, SCHEDULER_GROUP: Scheduler,
                          SUCCESSOR_GROUP: SuccessorBuilder, FAMILY_GROUP: ModelFamily,
                          TASK_KIND_GROUP: TaskKind}
KIND: dict[str, str] = {STAGE_GROUP: "stage", SCHEDULER_GROUP: "scheduler",
                        SUCCESSOR_GROUP: "successor builder", FAMILY_GROUP: "model family",
                        TASK_KIND_GROUP: "task kind"}


@dataclass(frozen=True)
class PluginInfo:
    """One discovered plugin (or a broken one, with ``error`` set)."""

    group: str
    name: str
    value: str  # "module:attr"
    distribution: str
    obj: Any = None
    error: str | None = None


def _distribution(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "?"


@functools.cache
def discover(group: str) -> tuple[PluginInfo, ...]:
    """All plugins of ``group``, loaded; broken ones carry ``error``.

    Cached per process; call ``discover.cache_clear()`` after installing plugins.
    """
    base = BASES[group]
    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=group):
        info = dict(group=group, name=ep.name, value=ep.value, distribution=_distribution(ep))
        try:
            obj = ep.load()
            if not (isinstance(obj, type) and issubclass(obj, base)):
                raise TypeError(f"{ep.value} is not a subclass of {base.__qualname__}")
            if getattr(obj, "name", None) != ep.name:
                raise TypeError(f"{ep.value}.name is {getattr(obj, 'name', None)!r}, "
                                f"but its entry point is named {ep.name!r}")
            if not hasattr(obj, "Params"):
                raise TypeError(f"{ep.value} has no Params dataclass")
            found[ep.name] = PluginInfo(obj=obj, **info)
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a plugin may raise anything, even sys.exit()
            if ep.name not in found:  # a working plugin of the same name wins
                what = (f"SystemExit({e.code!r}) while importing" if isinstance(e, SystemExit)
                        else f"{type(e).__name__}: {e}")
                found[ep.name] = PluginInfo(error=what, **info)
    return tuple(sorted(found.values(), key=lambda p: p.name))


def available(group: str) -> dict[str, Any]:
    """``name -> plugin class`` for the working plugins of ``group``."""
    return {p.name: p.obj for p in discover(group) if p.error is None}


def broken() -> list[PluginInfo]:
    """Plugins of every group that failed to load."""
    return [p for g in BASES for p in discover(g) if p.error is not None]


def get(group: str, name: str) -> Any:
    """The plugin class registered as ``name`` in ``group``.

    Raises:
        UnknownNameError: listing the available names (a broken plugin of that
            name is named with its error).
    """
    plugins = available(group)
    if name in plugins:
        return plugins[name]
    for p in discover(group):
        if p.name == name and p.error:
            raise UnknownNameError(KIND[group], f"{name} (failed to load: {p.error})", plugins)
    raise UnknownNameError(KIND[group], name, plugins)


def stages() -> dict[str, type[Stage]]:
    """Registered stages by command name, in pipeline order (inputs before users)."""
    plugins = available(STAGE_GROUP)
    ordered: dict[str, type[Stage]] = {}

    def visit(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in ordered or name not in plugins or name in seen:
            return
        for dep in plugins[name].inputs:
            visit(dep, (*seen, name))
        ordered[name] = plugins[name]

    for name in plugins:
        visit(name)
    return ordered


def successor_stages() -> list[str]:
    """Stages whose artifacts are successors (``Stage.produces_successor``), in pipeline order."""
    return [name for name, cls in stages().items() if cls.produces_successor]


def stage(name: str) -> type[Stage]:
    """The stage registered as ``name`` (raises UnknownNameError, see :func:`get`)."""
    return get(STAGE_GROUP, name)


def scheduler(name: str) -> type[Scheduler]:
    """The scheduler registered as ``name`` (raises UnknownNameError, see :func:`get`)."""
    return get(SCHEDULER_GROUP, name)


def successor_builder(name: str) -> type[SuccessorBuilder]:
    """The successor builder registered as ``name`` (raises UnknownNameError)."""
    return get(SUCCESSOR_GROUP, name)


@functools.cache
def task_kind(name: str) -> TaskKind:
    """The task kind registered as ``name``, an instance (raises UnknownNameError)."""
    return get(TASK_KIND_GROUP, name)()


def kind_of(task: Any) -> TaskKind:
    """The kind of ``task`` (a GLUE task or a user's: its ``kind`` name)."""
    return task_kind(task.kind)


def family_for(model_type: str, source: str = "") -> ModelFamily:
    """The model family plugin whose ``model_types`` include ``model_type``.

    Raises:
        ModelSourceError: no loaded family supports it; names the supported model
            types and how a family is added.
    """
    supported = {}
    for name, cls in available(FAMILY_GROUP).items():
        if model_type in cls.model_types:
            return cls()
        supported[name] = cls.model_types
    listed = "; ".join(f"{n}: {', '.join(t)}" for n, t in sorted(supported.items()))
    raise ModelSourceError(
        f"module replacing does not support model type {model_type!r}"
        f"{f' ({source})' if source else ''}; supported families (model types): {listed}. "
        "Choose such a model in theseus.yaml (model:), or add a family: a plugin in the "
        f"{FAMILY_GROUP!r} entry-point group subclassing theseus_cli.plugin.family.LayerListFamily "
        "(see docs/plugins.md)")


def family_of(model: Any) -> ModelFamily:
    """:func:`family_for` the model's ``config.model_type``."""
    return family_for(getattr(getattr(model, "config", None), "model_type", None)
                      or type(model).__name__)
