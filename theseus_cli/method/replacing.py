"""Progressive module replacing (BERT-of-Theseus, Xu et al. 2020, section 3).

The predecessor's L Transformer layers are split into n modules of L/n
consecutive layers, ``prd_1 .. prd_n``; each has one successor module
``scc_i`` (by default a single layer). During replacing training every module
is, per optimizer step, independently swapped for its successor:

    r_i ~ Bernoulli(p)                                    (eq. 2)
    y_{i+1} = r_i * scc_i(y_i) + (1 - r_i) * prd_i(y_i)   (eq. 3)

Only the chosen branch is computed. Everything of the predecessor (embeddings,
layers, pooler, classifier) is frozen; only successor modules train. Afterwards
the successor modules alone form the successor model (eq. 5):

    y_{i+1} = scc_i(y_i)                                  (eq. 5)

The model family (``theseus_cli.plugin.family``) says where the L layers are. Each
becomes a routed slot of one shared router, and the family's own encoder or
decoder loop runs unchanged: it calls slot j with the arguments of layer j
(masks, relative positions, rotary embeddings), and the slot runs predecessor
layer j, successor module i, or passes the hidden states through.

Tensor shapes: hidden states are (batch, seq_len, hidden) throughout; masks and
position tensors are whatever the family's loop passes to its layers.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel

from theseus_cli.errors import ConfigError, ExportError, PluginError
from theseus_cli.method.grouping import group_layers
from theseus_cli.plugin.registry import family_of

EVAL_PATHS = ("successor", "predecessor")


# ---------------------------------------------------------------- routing --

class ModuleRouter:
    """Which path each of the n modules takes in the next forward pass.

    Shared by the L :class:`RoutedLayer` slots of one hybrid (a plain object, not a
    module: the layers and modules belong to the slots). In training mode module i
    runs its successor when ``replacement_mask[i]`` (eq. 3); in eval mode every
    module takes ``eval_path``: ``"successor"`` (eq. 5, default) or ``"predecessor"``.

    Attributes:
        groups: ``groups[i]`` = indices of the predecessor layers of module i.
        predecessor_layers: the L frozen layers, in order of application.
        successor_modules: the n trainable modules.
        predecessor_config: a copy of the predecessor's config before routing.
        family: the :class:`~theseus_cli.plugin.ModelFamily` that routed it.
        builder: the :class:`~theseus_cli.plugin.SuccessorBuilder` of the modules
            (None: stock copies), used to assemble and save the successor.
        replacement_mask: BoolTensor (n,) or None; see :meth:`set_replacement_mask`.
    """

    def __init__(self, groups: list[range], predecessor_layers: list[nn.Module],
                 successor_modules: nn.ModuleList, predecessor_config: Any, family: Any,
                 builder: Any = None):
        self.groups, self.predecessor_layers = groups, predecessor_layers
        self.successor_modules, self.predecessor_config = successor_modules, predecessor_config
        self.family, self.builder = family, builder
        self.eval_path = "successor"
        self.replacement_mask: torch.Tensor | None = None
        self.output_form: dict[int, int | None] = {}  # module -> tuple length of its output
        #: the word embedding's slot when it is replaced too (:func:`route_embedding`):
        #: module n, after the n layer modules
        self.embedding: RoutedEmbedding | None = None

    @property
    def num_modules(self) -> int:
        """n, the layer modules."""
        return len(self.successor_modules)

    @property
    def num_draws(self) -> int:
        """Bernoulli draws per step (eq. 2): the n layer modules, and the word embedding
        when it is replaced too."""
        return self.num_modules + (self.embedding is not None)

    def set_replacement_mask(self, mask: torch.Tensor | None) -> None:
        """Set r (BoolTensor (num_draws,), True = use successor module) for the next
        training forward passes; typically once per optimizer step."""
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool).cpu()
            if mask.shape != (self.num_draws,):
                raise ValueError(
                    f"replacement mask has shape {tuple(mask.shape)}, expected ({self.num_draws},)"
                )
        self.replacement_mask = mask

    def uses_successor(self, module: int, training: bool) -> bool:
        """Whether module ``module`` runs its successor in this forward pass."""
        if training:
            if self.replacement_mask is None:
                raise RuntimeError(
                    "the hybrid is in training mode but no replacement mask was set; "
                    "call set_replacement_mask(draw_replacement_mask(...)) before forward")
            return bool(self.replacement_mask[module])
        if self.eval_path not in EVAL_PATHS:
            raise ValueError(f"eval_path={self.eval_path!r}; accepted: {', '.join(EVAL_PATHS)}")
        return self.eval_path == "successor"


class DelegatingSlot(nn.Module):
    """A module put where a model's own code expects another (a layer of the family's list,
    the word embedding): attributes that code reads from it (ModernBERT's
    ``attention_type``, an embedding's ``padding_idx``) are those of :meth:`_running`, the
    module that runs now; :attr:`own` names this slot's own attributes, never delegated."""

    own: ClassVar[tuple[str, ...]] = ()

    def _running(self) -> nn.Module:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("_") or name in self.own:
                raise
            return getattr(self._running(), name)


def pass_through(args: tuple, kwargs: dict[str, Any], size: int | None) -> Any:
    """What a layer call that is skipped returns: its hidden states (batch, seq_len,
    hidden), the first positional argument or ``hidden_states``, shaped like the layer's
    output: a tensor (``size`` None) or a tuple of ``size`` with Nones after them."""
    hidden = args[0] if args else kwargs["hidden_states"]  # (batch, seq_len, hidden)
    return hidden if size is None else (hidden, *([None] * (size - 1)))


def tuple_size(out: Any) -> int | None:
    """The output form :func:`pass_through` copies: a tuple's length, None for a tensor."""
    return len(out) if isinstance(out, tuple) else None


class RoutedLayer(DelegatingSlot):
    """Slot j of the family's layer list in the hybrid: layer j of module i's group.

    The family's own loop calls it exactly as it called layer j, with every
    positional and keyword argument (masks, relative positions, rotary embeddings).
    When module i takes its predecessor path, slot j runs predecessor layer j. When
    it takes its successor, the group's first slot runs successor module i with the
    same arguments and the group's other slots pass the hidden states through,
    shaped like that module's output (a tensor, or a tuple with Nones after it).
    Attributes the loop reads from a layer (ModernBERT's ``attention_type``) are
    those of the module that runs.
    """

    own = ("layer", "successor", "router")

    def __init__(self, router: ModuleRouter, module: int, position: int, layer: nn.Module,
                 successor: nn.Module | None = None):
        super().__init__()
        self.layer = layer  # predecessor layer j (frozen)
        self.successor = successor  # successor module i, on the group's first slot only
        self.module_index, self.position = module, position
        object.__setattr__(self, "router", router)  # shared state, not a submodule

    def _running(self) -> nn.Module:
        if self.router.uses_successor(self.module_index, self.training) and self.position == 0:
            return self.successor
        return self.layer

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Route one layer call; hidden states (batch, seq_len, hidden) in and out."""
        router, i = self.router, self.module_index
        if not router.uses_successor(i, self.training):
            return self.layer(*args, **kwargs)
        if self.position == 0:
            out = self.successor(*args, **kwargs)
            router.output_form[i] = tuple_size(out)
            return out
        return pass_through(args, kwargs, router.output_form.get(i))


class RoutedEmbedding(DelegatingSlot):
    """The word embedding as module n of the hybrid: the predecessor's (frozen) or its
    successor (a :class:`~theseus_cli.model.embedding.FactorizedEmbedding`), by the same
    Bernoulli draw as the layer modules (eq. 2-3). ``ids (B, L) -> (B, L, H)``."""

    own = ("predecessor", "successor", "router")

    def __init__(self, router: ModuleRouter, predecessor: nn.Module, successor: nn.Module):
        super().__init__()
        self.predecessor, self.successor = predecessor, successor
        object.__setattr__(self, "router", router)  # shared state, not a submodule

    def _running(self) -> nn.Module:
        router = self.router
        used = router.uses_successor(router.num_modules, self.training)
        return self.successor if used else self.predecessor

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self._running()(input_ids)


def route_embedding(hybrid: PreTrainedModel, successor: nn.Module) -> RoutedEmbedding:
    """Make the hybrid's word embedding one more replaceable module (in place): its slot
    runs the frozen predecessor embedding or ``successor`` (trainable, moved to the
    hybrid's device), drawn like the layer modules; :func:`assemble_successor` keeps the
    successor. Returns the slot.

    Raises:
        ExportError: the model is not a hybrid.
    """
    router = router_of(hybrid)
    ref = next(hybrid.parameters())
    successor = successor.to(device=ref.device, dtype=ref.dtype).requires_grad_(True)
    slot = RoutedEmbedding(router, hybrid.get_input_embeddings(), successor)
    slot.train(hybrid.training)
    hybrid.set_input_embeddings(slot)
    router.embedding = slot
    return slot


# ----------------------------------------------------------------- hybrid --

def router_of(model: nn.Module) -> ModuleRouter:
    """The :class:`ModuleRouter` of a hybrid built by :func:`make_hybrid`.

    Raises:
        ExportError: the model is not a hybrid.
    """
    router = getattr(model, "theseus_router", None)
    if not isinstance(router, ModuleRouter):
        raise ExportError(f"{type(model).__name__} is not a hybrid model (no module router); "
                          "build it with make_hybrid")
    return router


def make_hybrid(predecessor: PreTrainedModel, successor_modules: nn.ModuleList,
                num_modules: int, family: Any = None, builder: Any = None) -> PreTrainedModel:
    """Turn a fine-tuned ``*ForSequenceClassification`` into the hybrid model (eq. 3).

    Modifies ``predecessor`` in place and returns it (its ``config.use_cache`` off: no KV
    cache in the hybrid): each of the family's L layers
    is wrapped in a :class:`RoutedLayer` slot sharing one :class:`ModuleRouter`
    (``model.theseus_router``); successor module i sits in the first slot of group i.
    Every predecessor parameter (embeddings, layers, norms, head) gets
    requires_grad=False; every successor parameter requires_grad=True.

    Args:
        family: the model's :class:`~theseus_cli.plugin.ModelFamily`; None looks it
            up from ``config.model_type``.
        builder: the successor builder that made the modules (kept for assembly).

    Raises:
        ModelSourceError: no family supports the model.
        ConfigError: the family has no layer list there, or the number of successor
            modules differs from ``num_modules`` / does not divide L.
    """
    family = family or family_of(predecessor)
    family.check(predecessor.config, num_modules)
    layers = family.layers(predecessor)
    groups = group_layers(len(layers), num_modules)  # validates n against L
    if len(successor_modules) != num_modules:
        raise ConfigError(
            f"got {len(successor_modules)} successor modules for num_modules={num_modules}"
        )
    predecessor.requires_grad_(False)
    ref = next(predecessor.parameters())
    successor_modules = family.conform(successor_modules).to(ref.device)
    successor_modules.requires_grad_(True)
    router = ModuleRouter(groups, layers, successor_modules, copy.deepcopy(predecessor.config),
                          family, builder)
    # No KV cache in the hybrid: a classifier never generates, and successor module i
    # (layer_idx i, as in the successor) would share cache slot i with predecessor layer i
    # of another group, doubling its keys on padded batches. The assembled successor keeps
    # the predecessor's setting (the router's copy of the config).
    if getattr(predecessor.config, "use_cache", None):
        predecessor.config.use_cache = False
    slots = [RoutedLayer(router, i, k, layers[j], successor_modules[i] if k == 0 else None)
             for i, group in enumerate(groups) for k, j in enumerate(group)]
    for slot in slots:
        slot.train(predecessor.training)
    family.install(predecessor, slots)
    object.__setattr__(predecessor, "theseus_router", router)
    return predecessor


def dummy_input_ids(model: nn.Module) -> torch.Tensor:
    """A dummy batch of token ids, (2, 8), above the first 5 ids (special tokens in most
    vocabularies) and below ``config.vocab_size``, on the model's device."""
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    ref = next(model.parameters())
    return (torch.arange(16, device=ref.device).view(2, 8) % max(vocab - 5, 1)) + min(5, vocab - 1)


def check_successor_forward(hybrid: PreTrainedModel, builder_name: str = "?") -> None:
    """One forward pass of the successor path (eq. 5) on a dummy batch of 2 × 8 tokens,
    right after the modules are built: shapes that do not fit fail here, before any
    training. The hybrid's mode and eval path are restored.

    Raises:
        PluginError: names the successor builder and the error, or the logits' shape
            (expected (2, num_labels), or (2, 8, num_labels) for token classification)
            when they are not finite or of another shape.
    """
    router = router_of(hybrid)
    config = router.predecessor_config
    ids = dummy_input_ids(hybrid)
    was_training, path = hybrid.training, router.eval_path
    hybrid.eval()
    router.eval_path = "successor"
    try:
        with torch.no_grad():
            logits = hybrid(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    except Exception as e:  # noqa: BLE001 - a plugin's module may raise anything
        raise PluginError(f"successor builder {builder_name!r} built modules that do not fit the "
                          f"predecessor: a forward pass on a dummy batch (2 × 8 tokens) failed "
                          f"with {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                          ) from None
    finally:
        hybrid.train(was_training)
        router.eval_path = path
    shape = tuple(logits.shape)  # (2, C); token classification (2, 8, C)
    expected = (2, 8, int(config.num_labels)) if len(shape) == 3 else (2, int(config.num_labels))
    if shape != expected or not torch.isfinite(logits).all():
        raise PluginError(f"successor builder {builder_name!r}: the successor's logits on a dummy "
                          f"batch have shape {tuple(logits.shape)} (expected {expected}) or are "
                          "not finite")


def assemble_successor(hybrid: PreTrainedModel) -> PreTrainedModel:
    """Build the compact successor model S = {scc_1 .. scc_n} (eq. 5).

    Returns a NEW model of the hybrid's class with n layers (the family's
    ``build_successor``): everything outside the layer list copied from the
    predecessor (the word embedding from its successor when it was replaced too),
    layer i a copy of successor module i. In eval mode it gives exactly
    the hybrid's eval (successor path) logits. The hybrid is not modified.

    Raises:
        ExportError: the model is not a hybrid, or a successor module cannot be a
            layer of the family's stock model.
    """
    router = router_of(hybrid)
    slot = router.embedding
    if slot is None:
        return router.family.build_successor(hybrid, list(router.successor_modules),
                                             router.builder)
    hybrid.set_input_embeddings(slot.successor)  # what the successor keeps (eq. 5)
    try:
        return router.family.build_successor(hybrid, list(router.successor_modules),
                                             router.builder)
    finally:
        hybrid.set_input_embeddings(slot)
