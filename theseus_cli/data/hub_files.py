"""A task's split from the Hugging Face Hub instead of a file: ``hub:ID[:CONFIG][@SPLIT]``
(kept for users who reach the Hub; ``datasets``' cache serves it offline)."""

from __future__ import annotations

from typing import Any

from theseus_cli.errors import DataError

#: a file setting that names a Hugging Face Hub dataset: ``hub:ID[:CONFIG][@SPLIT]``
HUB_PREFIX = "hub:"


def parse_hub(value: str, default_split: str) -> tuple[str, str | None, str] | None:
    """``(dataset id, config or None, split)`` of a ``hub:ID[:CONFIG][@SPLIT]`` setting
    (``hub:nyu-mll/glue:mrpc@validation``; the split defaults to ``default_split``), or
    None for a local path."""
    if not value.startswith(HUB_PREFIX):
        return None
    rest, _, split = value[len(HUB_PREFIX):].partition("@")
    name, _, config = rest.partition(":")
    if not name:
        raise DataError(f"{value!r}: no dataset id; write hub:ID[:CONFIG][@SPLIT], e.g. "
                        "hub:tner/wnut2017@train")
    return name, config or None, split or default_split


def read_hub(name: str, config: str | None, split: str) -> Any:
    """Split ``split`` of Hub dataset ``name`` (config ``config``), through
    ``datasets.load_dataset`` (its cache serves it offline with HF_DATASETS_OFFLINE=1).

    Raises:
        DataError: the dataset, config or split cannot be loaded (the reason named).
    """
    import datasets

    where = f"hub:{name}{':' + config if config else ''}@{split}"
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # noqa: BLE001 - network, missing config/split, bad repo...
        first = (str(e).splitlines() or [""])[0]
        raise DataError(f"{where}: cannot load the Hub dataset ({type(e).__name__}: {first}); "
                        "check the id, config and split, and that the Hub is reachable (or "
                        "the dataset cached, with HF_DATASETS_OFFLINE=1)") from None
    if len(ds) == 0:
        raise DataError(f"{where}: the split has no rows")
    return ds


def class_labels_as_names(ds: Any, column: str, where: str = "") -> Any:
    """``ds`` with a ``ClassLabel`` column (or a sequence of them: tag ids) turned into the
    class names it stands for, so labels are matched by name as in every other format.

    A column of ``-1`` only (the Hub's "no label", as in GLUE's test splits) is dropped:
    the split is unlabelled, like a test file without the label column.

    Raises:
        DataError: some, not all, rows are ``-1`` (their count and first row named).
    """
    import datasets

    feature = ds.features.get(column)
    inner = getattr(feature, "feature", None)
    if not isinstance(feature, datasets.ClassLabel) and not isinstance(inner, datasets.ClassLabel):
        return ds
    flat = ds[column] if isinstance(feature, datasets.ClassLabel) else \
        [min(row, default=0) for row in ds[column]]
    missing = [i for i, v in enumerate(flat) if v < 0]
    if len(missing) == len(ds):
        return ds.remove_columns(column)
    if missing:
        raise DataError(f"{where or column}: {len(missing)} of {len(ds)} rows have no label "
                        f"(-1 in the ClassLabel column {column!r}; first: row {missing[0]}); "
                        "give a split whose rows are all labelled, or none")
    names = (feature if isinstance(feature, datasets.ClassLabel) else inner).names
    if isinstance(feature, datasets.ClassLabel):
        return ds.map(lambda b: {column: [names[i] for i in b[column]]}, batched=True,
                      features=_with(ds, column, datasets.Value("string")))
    return ds.map(lambda b: {column: [[names[i] for i in row] for row in b[column]]},
                  batched=True, features=_with(ds, column,
                                               datasets.Sequence(datasets.Value("string"))))


def _with(ds: Any, column: str, feature: Any) -> Any:
    features = ds.features.copy()
    features[column] = feature
    return features
