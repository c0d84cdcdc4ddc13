"""Plugin basics: the entry-point groups, :func:`param` (one plugin setting), the base
class of every plugin kind, and the rule that names a plugin selector."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

STAGE_GROUP = "theseus.stages"
SCHEDULER_GROUP = "theseus.schedulers"
SUCCESSOR_GROUP = "theseus.successors"
FAMILY_GROUP = "theseus.families"
TASK_KIND_GROUP = "theseus.task_kinds"


def param(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    cli: bool = True,
    plugin_group: str | None = None,
    fingerprint: bool = True,
) -> Any:
    """Declare one plugin setting as a dataclass field.

    Args:
        default: value used when neither theseus.yaml nor the CLI sets it.
            Lists and dicts are copied per instance.
        help: one line, shown in ``--help`` and as the comment in theseus.yaml.
            State units (steps, epochs, seconds, MB) here.
        choices: closed set of accepted values; anything else is a ConfigError
            that lists them.
        min, max: inclusive numeric bounds.
        cli: whether the stage command gets a ``--option`` for it.
        plugin_group: makes this a ``dict`` of per-plugin arguments keyed by
            plugin name (e.g. ``schedulers: {linear: {b: 0.3}}``) for the
            entry-point group given; each entry is validated against that
            plugin's ``Params``. The plugin in use is picked by the field named
            like this one without its final ``s`` (``scheduler``), and the CLI
            sets its arguments with ``--<that name>-arg KEY=VALUE`` (:func:`selector_of`).
        fingerprint: False for settings that cannot change a stage's result
            (e.g. checkpoint frequency): they stay out of the fingerprint that
            decides whether a stage is up to date or a run can resume.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None,
            "min": min, "max": max, "cli": cli and plugin_group is None,
            "plugin_group": plugin_group, "fingerprint": fingerprint}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NoParams:
    """``Params`` of a plugin without settings."""


class Plugin:
    """What every plugin kind has: its entry-point ``name``, a one-line ``help`` (shown by
    ``theseus plugins`` and ``--help``) and a ``Params`` dataclass built with :func:`param`."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams



@dataclass(frozen=True)
class PluginChoice:
    """A Params field that picks a plugin and holds per-plugin arguments.

    Attributes:
        table: the field holding ``{plugin name: {argument: value}}`` (``schedulers``).
        selector: the field naming the plugin in use (``scheduler``): :func:`selector_of`.
        group: the plugins' entry-point group (``theseus.schedulers``).
    """

    table: str
    selector: str
    group: str


def selector_of(table: str) -> str:
    """The selector field of a plugin-argument table: its name without the final ``s``
    (``schedulers`` -> ``scheduler``). The one place this naming rule is written."""
    return table[:-1] if table.endswith("s") else table


def plugin_choices(params: Any) -> list[PluginChoice]:
    """The plugin choices of a ``Params`` dataclass or instance, in field order (the
    fields declared with ``param(..., plugin_group=...)``)."""
    return [PluginChoice(f.name, selector_of(f.name), f.metadata["plugin_group"])
            for f in fields(params) if f.metadata.get("plugin_group")]
