"""The model-family contract (entry-point group ``theseus.families``): where a family
keeps its layers, and the one generic implementation.

:class:`LayerListFamily` implements the :class:`ModelFamily`
contract for every family whose Transformer layers are one ``nn.ModuleList`` at an
attribute path of the ``*ForSequenceClassification`` model (``base_model.encoder.layer``
for BERT, ``base_model.layers`` for Llama, ``base_model.h`` for GPT-2). The built-in
families (``plugins/theseus_builtin/families/builtin.py``) are small subclasses of it;
``theseus_cli.plugin.registry.family_for`` picks the family of a model type.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from theseus_cli.errors import ConfigError, ExportError
from theseus_cli.plugin.base import Plugin
from theseus_cli.plugin.successor import SuccessorBuilder

if TYPE_CHECKING:
    from torch import nn

#: per-layer config lists (one entry per layer) cut to the successor's layers
PER_LAYER_LISTS = ("layer_types",)


@dataclass(frozen=True)
class FeedForward:
    """Where a layer's feed-forward block is, for successor types that narrow it.

    Attributes:
        inputs: dotted names (within one layer) of the maps into the I neurons
            (BERT: ``intermediate.dense``; Llama: ``mlp.gate_proj``, ``mlp.up_proj``).
        output: dotted name of the map out of them (``output.dense``).
        size_key: the config key of I (``intermediate_size``; GPT-2 ``n_inner``).
        packed: chunks of I rows per input map (ModernBERT's ``Wi``: input and gate, 2).
    """

    inputs: tuple[str, ...]
    output: str
    size_key: str = "intermediate_size"
    packed: int = 1


@dataclass(frozen=True)
class AttentionBlock:
    """Where a layer's self-attention projections are, for successor types that drop heads.

    Attributes:
        query, key, value: dotted names (within one layer) of the separate projections
            into heads × head_dim features (key and value may have fewer heads: grouped
            query attention).
        output: dotted name of the projection out of the concatenated heads.
        head_dim: dotted name of the attribute holding the head size.
        counts: dotted names of attributes holding the number of query heads, updated
            when heads are dropped (the forward passes reshape with -1 heads).
        sizes: dotted names of attributes holding heads × head_dim, updated likewise.
        per_head: dotted names of further maps into query heads × head_dim (DeBERTa's
            ``pos_query_proj`` and ``pos_key_proj``), pruned with the query heads; a name
            the layer lacks is skipped.
        fused: query, key and value are one map whose output rows are [q; k; v] (GPT-2's
            ``c_attn``, ModernBERT's ``Wqkv``): give its name as all three.
        side_inputs: keyword arguments of the layer call that the projections read
            besides the hidden states (DeBERTa: ``rel_embeddings``, hidden-size wide), for
            types that change the hidden size (``narrow-hidden`` projects them too).
        head_bias: dotted name of the module whose call receives an additive per-head
            attention bias of shape (B or 1, heads, L, L), computed once outside the layers
            (MPNet's relative position bias: ``attention.attn``); when heads are dropped,
            the bias keeps the rows of the kept heads.
        head_bias_arg: ``(position, keyword)`` of that bias in the module's call.
    """

    query: str
    key: str
    value: str
    output: str
    head_dim: str
    counts: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    per_head: tuple[str, ...] = ()
    fused: bool = False
    side_inputs: tuple[str, ...] = ()
    head_bias: str | None = None
    head_bias_arg: tuple[int, str] = (2, "position_bias")

    def head_counts(self, layer: nn.Module) -> tuple[int, int, int]:
        """``(query heads H, key/value heads G, head_dim d)`` of ``layer``'s attention, read
        off its projections (so they follow dropped heads): H = out features of the query
        map / d (/ 3 more when fused), G likewise from the key map."""
        d = int(_dotted_attr(layer, self.head_dim))
        heads = _out_features(layer.get_submodule(self.query)) // d
        if self.fused:  # one map into [q; k; v]
            return heads // 3, heads // 3, d
        return heads, _out_features(layer.get_submodule(self.key)) // d, d


def _dotted_attr(root: nn.Module, dotted: str) -> Any:
    parent, _, name = dotted.rpartition(".")
    return getattr(root.get_submodule(parent) if parent else root, name)


def _out_features(linear: nn.Module) -> int:
    """Output features of ``nn.Linear`` (``out_features``), transformers' ``Conv1D``
    (``nf``) or any map with a (out, in) weight."""
    for name in ("out_features", "nf"):
        if hasattr(linear, name):
            return int(getattr(linear, name))
    return int(linear.weight.shape[0])


class ModelFamily(Plugin, ABC):
    """A family of Transformer models module replacing can work on (BERT, GPT-2, ...).

    A family says where a ``*ForSequenceClassification`` model of its ``model_types``
    keeps its list of Transformer layers. Everything outside that list (embeddings,
    relative-position tables, rotary embeddings, final norms, pooler, head) stays
    the family's own code: module replacing puts a routed slot in each entry of the
    list and lets the family's encoder or decoder loop call them with its own
    arguments. :class:`LayerListFamily` implements every method for
    families whose layers are a ``ModuleList`` at one attribute path; a family
    plugin usually subclasses it and sets ``model_types`` and ``layers_path``.
    """

    #: ``config.model_type`` values of the family (``"bert"``, ``"llama"``, ...)
    model_types: ClassVar[tuple[str, ...]] = ()
    #: what lies outside the layer list and runs unchanged, for ``theseus plugins``
    outside: ClassVar[str] = ""
    #: the token whose hidden state stands for the sequence (PKD's patient loss):
    #: ``"first"`` ([CLS], encoders) or ``"last"`` (the last real token, decoders)
    pooled_token: ClassVar[str] = "first"

    def __init__(self, params: Any = None):
        self.params = params if params is not None else self.Params()

    @abstractmethod
    def layers(self, model: nn.Module) -> list[nn.Module]:
        """The L Transformer layers in the order the model applies them (a layer shared
        by several applications, as ALBERT's, appears once per application)."""

    @abstractmethod
    def install(self, model: nn.Module, slots: Sequence[nn.Module]) -> None:
        """Put ``slots`` (one per entry of :meth:`layers`, in order) where the layers
        were, so that the model's own loop calls slot j where it called layer j."""

    @abstractmethod
    def build_successor(self, model: nn.Module, modules: Sequence[nn.Module],
                        builder: SuccessorBuilder | None = None) -> nn.Module:
        """A new model of ``model``'s class with ``len(modules)`` layers: everything
        outside the layer list copied from ``model``, layer i a copy of ``modules[i]``
        (paper eq. 5). ``builder``, the successor builder that made the modules (None for
        plain copies), may change the config (:meth:`SuccessorBuilder.config_updates`)
        and restructure layers (:meth:`SuccessorBuilder.layer_spec`).

        Raises:
            ExportError: a module cannot be a layer of the family's stock model.
        """

    def stock_form(self, model: nn.Module) -> tuple[nn.Module, str] | None:
        """A stock Hugging Face model (possibly of another class) that computes exactly
        what ``model``, a restructured successor (``model.theseus_successor``), computes,
        with one line naming it; None (the default) where the family has none: the
        successor is then exported for theseus's loader. ``export`` checks the stock
        model's logits against ``model``'s before publishing it."""
        return None

    def conform(self, modules: nn.ModuleList) -> nn.ModuleList:
        """Make module i fit position i of the family's n-layer model before training
        (ModernBERT's first layer has no attention norm). Default: unchanged."""
        return modules

    def check(self, config: Any, num_modules: int | None = None) -> None:
        """Reject, from the model's config alone, a configuration the family cannot
        route or export (before any training). Default: accept.

        Raises:
            ConfigError / ModelSourceError: naming the setting and what is accepted.
        """


def _walk(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj


class LayerListFamily(ModelFamily):
    """A family whose L layers are the ``nn.ModuleList`` at ``layers_path``.

    The successor's config is a copy of the predecessor's with ``num_hidden_layers``
    = n (transformers maps it to ``n_layer`` / ``n_layers`` where a family names it
    so) and each per-layer list (``layer_types``) taken at the layers the modules
    stand for: a module's own ``attention_type`` where it has one (ModernBERT's
    alternating global / sliding attention), else the entry of the first layer of
    its group.
    """

    #: attribute path from the ``*ForSequenceClassification`` model to the layer list
    layers_path: ClassVar[str] = "base_model.encoder.layer"
    #: True when the model's loop picks each layer's mask from ``config.layer_types[i]``
    #: (by position, not from the layer): groups must then share one attention type
    layer_types_by_position: ClassVar[bool] = False
    #: the feed-forward block of a layer (None: narrow-ffn cannot work on the family)
    ffn: ClassVar[FeedForward | None] = None
    #: the self-attention projections of a layer (None: head-pruned cannot work on it)
    attention: ClassVar[AttentionBlock | None] = None

    def layer_list(self, model: Any) -> nn.ModuleList:
        """The ``nn.ModuleList`` at :attr:`layers_path`.

        Raises:
            ConfigError: the model has none there (names its class and the path).
        """
        from torch import nn

        layers = _walk(model, self.layers_path)
        if not isinstance(layers, nn.ModuleList):
            raise ConfigError(f"{type(model).__name__} has no layer list at {self.layers_path} "
                              f"(model family {self.name!r}); is it a {self.name} model?")
        return layers

    def layers(self, model: Any) -> list[nn.Module]:  # noqa: D102 - see ModelFamily.layers
        return list(self.layer_list(model))

    def install(self, model: Any, slots: Sequence[nn.Module]) -> None:  # noqa: D102
        from torch import nn

        parent_path, _, attr = self.layers_path.rpartition(".")
        parent = _walk(model, parent_path) if parent_path else model
        setattr(parent, attr, nn.ModuleList(slots))

    def check(self, config: Any, num_modules: int | None = None) -> None:
        """Positional layer types (Qwen2's sliding layers) must agree within each group."""
        types = getattr(config, "layer_types", None)
        if self.layer_types_by_position and types and len(set(types)) > 1:
            raise ConfigError(
                f"{self.name}: the predecessor mixes layer types {sorted(set(types))} "
                "(config.layer_types), which this family's loop picks by position; module "
                "replacing needs one type for every layer (e.g. use_sliding_window: false)")

    def successor_config(self, config: Any, modules: Sequence[nn.Module]) -> Any:
        """A copy of ``config`` for a model whose layer i is ``modules[i]``."""
        n, num_layers = len(modules), int(config.num_hidden_layers)
        out = copy.deepcopy(config)
        out.num_hidden_layers = n
        for key in PER_LAYER_LISTS:
            values = getattr(config, key, None)
            if isinstance(values, (list, tuple)) and len(values) == num_layers:
                step = max(1, num_layers // n)
                setattr(out, key, [getattr(m, "attention_type", values[min(i * step, num_layers - 1)])
                                   for i, m in enumerate(modules)])
        return out

    def layers_prefix(self, model: Any) -> str:
        """State-dict prefix of the layer list, e.g. ``"bert.encoder.layer."``."""
        layers = self.layer_list(model)
        for name, module in model.named_modules():
            if module is layers:
                return name + "."
        raise ExportError(f"{type(model).__name__}: the layer list is not a submodule")

    def build_successor(self, model: Any, modules: Sequence[nn.Module],
                        builder: SuccessorBuilder | None = None) -> Any:
        """See :meth:`ModelFamily.build_successor`. Every module must be an instance of
        the predecessor's layer class. ``builder`` (the successor builder that made the
        modules) may change the config (``config_updates``) and describe what the config
        cannot (``layer_spec``): the layer is then restructured to match and the model
        carries ``theseus_successor`` (builder, params, specs), saved beside its weights.
        A word embedding that is not a stock ``nn.Embedding`` but has a ``spec()`` (a
        factorised one) is kept as it is, its spec under ``theseus_successor["embedding"]``.
        A module given at several positions (cross-layer sharing) stays one layer object
        there, ``theseus_successor["shared"][i]`` naming the position it repeats.

        Raises:
            ExportError: a module of another class, or weights that do not fit.
        """
        import dataclasses

        import torch

        config, layer_cls = self._predecessor(model)
        specs = [None] * len(modules)
        if builder is not None:
            specs = [builder.layer_spec(m) for m in modules]
        for i, (module, spec) in enumerate(zip(modules, specs, strict=False)):
            if spec is None and not isinstance(module, layer_cls):  # a spec: restructured
                raise ExportError(
                    f"successor module {i} is a {type(module).__name__}, not the predecessor's "
                    f"layer class {layer_cls.__name__}; it cannot be exported as a "
                    f"{type(model).__name__}")
        config = self.successor_config(config, modules)
        if builder is not None:
            for key, value in builder.config_updates(modules).items():
                setattr(config, key, value)
        ref = next(model.parameters())
        with torch.random.fork_rng(devices=[]):  # its random init is overwritten: keep the
            successor = type(model)(config)      # run's random stream as it was
        embedding = model.get_input_embeddings()
        embedding_spec = embedding.spec() if callable(getattr(embedding, "spec", None)) else None
        if embedding_spec is not None:  # a compressed word embedding: the same structure
            successor.set_input_embeddings(copy.deepcopy(embedding))
        layer_list = self.layer_list(successor)
        for i, spec in enumerate(specs):
            if spec is not None:
                layer_list[i] = builder.restructure(layer_list[i], spec)
        successor.to(device=ref.device, dtype=ref.dtype)
        prefix = self.layers_prefix(model)
        outer = {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}
        missing, unexpected = successor.load_state_dict(outer, strict=False)
        bad = [k for k in missing if not k.startswith(prefix)] + list(unexpected)
        if bad:
            raise ExportError(f"state dict mismatch while building the successor: {bad[:5]}")
        for i, (dst, src) in enumerate(zip(self.layers(successor), modules, strict=True)):
            try:
                dst.load_state_dict(src.state_dict(), strict=True)
            except RuntimeError as e:
                raise ExportError(f"successor module {i} does not fit layer {i} of the "
                                  f"{type(model).__name__} it is exported as: "
                                  f"{str(e).splitlines()[0]}") from None
        owner: dict[int, int] = {}  # a module given at several places: shared, kept shared
        shared = [owner.setdefault(id(m), i) for i, m in enumerate(modules)]
        shared = [j if j != i else None for i, j in enumerate(shared)]
        for i, j in enumerate(shared):
            if j is not None:
                layer_list[i] = layer_list[j]
        if any(j is not None for j in shared) and getattr(successor.config, "use_cache", None):
            successor.config.use_cache = False  # one KV-cache slot per layer object: a shared
            # layer would append twice to it (a classifier never generates)
        extra = {**({"embedding": embedding_spec} if embedding_spec else {}),
                 **({"shared": shared} if any(j is not None for j in shared) else {})}
        if any(spec is not None for spec in specs) or extra:
            successor.theseus_successor = {
                "builder": builder.name if builder is not None else "first-n",
                "params": dataclasses.asdict(builder.params) if builder is not None else {},
                "specs": specs, **extra}
        successor.requires_grad_(True)
        successor.train(model.training)
        return successor

    def _predecessor(self, model: Any) -> tuple[Any, type]:
        """``(config, layer class)`` of the model, or of the predecessor of a hybrid
        (kept by its router: the hybrid's own list holds routed slots)."""
        router = getattr(model, "theseus_router", None)
        if router is not None:
            return router.predecessor_config, type(router.predecessor_layers[0])
        return model.config, type(self.layers(model)[0])
