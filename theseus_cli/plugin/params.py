"""Build and validate ``Params`` dataclasses (see ``theseus_cli.plugin.param``) from plain dicts.

One mechanism serves theseus.yaml, CLI options and plugin arguments: every
value is coerced to the field's declared type and checked against its
choices and bounds; unknown keys are errors that list the accepted keys.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from theseus_cli.errors import ConfigError

_MISSING = object()


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a Params dataclass (handles postponed annotations)."""
    return typing.get_type_hints(cls)


def base_type(tp: Any) -> tuple[Any, bool]:
    """``(inner type, optional?)`` for ``X``, ``X | None`` and ``Optional[X]``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        return tp, True
    return tp, False


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Coerce ``value`` (from YAML or a CLI string) to type ``tp``.

    Raises:
        ConfigError: naming ``where`` and the expected type.
    """
    inner, optional = base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() in ("null", "none", "~")
                         and inner is not str):
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required (got null)")
    origin = typing.get_origin(inner) or inner
    try:
        if origin is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if origin is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if origin is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if origin is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if origin is dict:
            if not isinstance(value, Mapping):
                raise ValueError
            return dict(value)
        if origin is list:
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return list(value)
    except (TypeError, ValueError):
        name = getattr(inner, "__name__", str(inner))
        raise ConfigError(f"{where}: expected {name}{' or null' if optional else ''}, "
                          f"got {value!r}") from None
    return value


def check_value(f: dataclasses.Field, value: Any, where: str) -> None:
    """Check ``value`` against the field's ``choices``, ``min`` and ``max``; a float must be
    finite (NaN passes no bound check and would make every later comparison false)."""
    meta = f.metadata
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value!r} is not a finite number; give a number"
                          + (f" from {meta['min']}" if meta.get("min") is not None else "")
                          + (f" up to {meta['max']}" if meta.get("max") is not None else ""))
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where}: invalid value {value!r}; accepted: "
                          + ", ".join(str(c) for c in choices))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"{where}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: {value!r} is above the maximum {hi}")


def build(cls: type, raw: Mapping[str, Any] | None, where: str, cli: bool = False) -> Any:
    """Instantiate Params dataclass ``cls`` from ``raw``, validating everything.

    Args:
        cls: a dataclass whose fields were declared with ``theseus_cli.plugin.param``.
        raw: key -> value; missing keys take the field default.
        where: prefix for error messages, e.g. ``"theseus.yaml: replace"``.
        cli: name keys as command-line options (``--max-seq-length``) in errors.

    Raises:
        ConfigError: unknown key (lists accepted keys), bad type, value outside
            choices or bounds, or a failed cross-field check in ``__post_init__``.
    """
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; accepted: "
                          + (", ".join(sorted(fields)) or "(none)"))
    hints = field_types(cls)
    kwargs = {}
    for name, value in raw.items():
        key_where = f"--{name.replace('_', '-')}" if cli else f"{where}.{name}"
        value = coerce(value, hints[name], key_where)
        check_value(fields[name], value, key_where)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(params: Any) -> dict[str, Any]:
    """Plain dict of a Params instance (for manifests and fingerprints)."""
    return dataclasses.asdict(params)


def parse_cli_value(text: str) -> Any:
    """Parse ``KEY=VALUE`` right-hand sides the way YAML would (``0.3`` -> float)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_assignments(items: list[str] | None, option: str) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` CLI items into a dict.

    Raises:
        ConfigError: an item without ``=`` (names the option and the item).
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{option}: expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = parse_cli_value(value)
    return out
