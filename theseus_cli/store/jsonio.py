"""Strict JSON for everything theseus writes (manifests, reports, logs).

Python's ``json`` writes ``NaN`` and ``Infinity``, which strict parsers
(JavaScript, ``jq``, most JSON libraries) reject. Every JSON document theseus
writes goes through :func:`dumps`: a non-finite float becomes ``null`` and its
place is listed under the key ``non_finite`` of the document's top level
(e.g. ``{"retention": null, ..., "non_finite": {"retention": "nan"}}``), so
nothing is silently lost.
"""

from __future__ import annotations

import json
import math
from typing import Any

NOTE_KEY = "non_finite"


def _numeric(obj: Any) -> float | None:
    """``obj`` as a Python float if it is a float-like scalar (NumPy, torch 0-d), else None."""
    if isinstance(obj, bool) or isinstance(obj, int):
        return None
    if isinstance(obj, float):
        return obj
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        try:
            value = item()
        except (TypeError, ValueError):
            return None
        return value if isinstance(value, float) else None
    return None


def finite(obj: Any, path: str = "", notes: dict[str, str] | None = None) -> Any:
    """``obj`` with every non-finite float replaced by ``None``.

    Args:
        obj: nested dicts / lists / tuples of JSON-able values.
        path: where ``obj`` sits (dotted, for the notes).
        notes: filled with ``dotted.path -> "nan" | "inf" | "-inf"`` per replaced value.
    """
    value = _numeric(obj)
    if value is not None:
        if math.isfinite(value):
            return value
        if notes is not None:
            notes[path or "."] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(obj, dict):
        return {k: finite(v, f"{path}.{k}" if path else str(k), notes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, f"{path}[{i}]", notes) for i, v in enumerate(obj)]
    tolist = getattr(obj, "tolist", None)  # NumPy arrays and scalars, tensors
    if callable(tolist) and not isinstance(obj, (str, bytes)):
        return finite(tolist(), path, notes)
    return obj


def clean(doc: Any) -> Any:
    """``doc`` made strict: non-finite floats become null; for a dict, the
    replaced places are listed under ``non_finite`` (kept if already there)."""
    notes: dict[str, str] = {}
    out = finite(doc, "", notes)
    if notes and isinstance(out, dict):
        out[NOTE_KEY] = {**(out.get(NOTE_KEY) or {}), **notes}
    return out


def dumps(doc: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``doc`` (see :func:`clean`); never emits NaN or Infinity.

    Raises:
        ValueError: a value is not JSON-serialisable after cleaning (a bug).
    """
    return json.dumps(clean(doc), indent=indent, allow_nan=False, default=_default)


def _default(obj: Any) -> Any:
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    return str(obj)
