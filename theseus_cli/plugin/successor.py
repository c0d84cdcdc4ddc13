"""The successor-builder contract: the successor modules scc_1 .. scc_n that module
replacing trains (paper section 3.1). Entry-point group ``theseus.successors``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from theseus_cli.plugin.base import Plugin

if TYPE_CHECKING:  # torch is heavy; only type checkers read this
    from torch import nn


@dataclass
class Calibration:
    """Data a successor builder may score the predecessor on (importance of heads).

    Attributes:
        model: the fine-tuned teacher, ``*ForSequenceClassification`` in eval mode, whose
            layers (or whose pretrained counterparts) :meth:`SuccessorBuilder.build` gets.
        batches: a few training batches of the task, dicts of tensors with ``labels``,
            on the model's device.
    """

    model: Any
    batches: list[dict[str, Any]]


class SuccessorBuilder(Plugin, ABC):
    """Builds the successor modules ``scc_1 .. scc_n`` (paper section 3.1).

    The predecessor's ``L`` Transformer layers are grouped into ``n`` modules of
    ``L / n`` consecutive layers; ``build`` returns ``n`` successor modules,
    module ``i`` standing in for predecessor module ``i``.

    Call convention: successor module ``i`` is called exactly as the model family's
    own encoder or decoder loop calls the first predecessor layer of group ``i``
    (layer ``i·L/n``): the same positional and keyword arguments, passed through
    unchanged by the router (``theseus_cli.method`` routes them). The first
    argument is the hidden states, (batch, seq_len, hidden); the module returns
    what that layer returns (a tensor of the same shape, or a tuple whose first
    element is one, as the family's layers do). If every module is an instance of
    the predecessor's layer class, the assembled successor (eq. 5) is a stock
    Hugging Face model with ``n`` layers (:meth:`ModelFamily.build_successor`).
    """

    #: the predecessor's :class:`ModelFamily`, set by the replace stage before :meth:`build`
    #: (for types that need to know where a layer's parts are, e.g. its feed-forward block)
    family: Any = None
    #: a :class:`Calibration` the replace stage sets before :meth:`build` when
    #: :meth:`calibration_batches` > 0: data for importance scores (of attention heads)
    calibration: Any = None

    def __init__(self, params: Any):
        self.params = params
        #: settings that do nothing, found by :meth:`build` (one line each, naming the
        #: setting and what happens instead); ``replace`` shows them and records them in
        #: its manifest (``info.warnings``)
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        """Record one of :attr:`warnings` (the same line once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def calibration_batches(self) -> int:
        """Training batches :meth:`build` wants in :attr:`calibration` (0, the default: none)."""
        return 0

    @property
    def init_source(self) -> str:
        """Whose layers :meth:`build` receives: ``"teacher"`` (the fine-tuned
        predecessor, as the official code) or ``"pretrained"`` (the predecessor
        before task fine-tuning, as the paper's section 4.3 wording). Default: teacher."""
        return "teacher"

    @abstractmethod
    def build(self, predecessor_layers: Sequence[nn.Module], num_modules: int) -> nn.ModuleList:
        """Return ``num_modules`` new, trainable successor modules.

        Args:
            predecessor_layers: the L layers to initialise from, in order (not
                modified): the teacher's or the pretrained predecessor's, as
                :attr:`init_source` asks.
            num_modules: n, the number of modules; L is divisible by n.

        Raises:
            ConfigError: when this builder cannot build n modules from these layers.
        """

    def config_updates(self, modules: Sequence[nn.Module]) -> dict[str, Any]:
        """Changes to the successor's config that make ``modules`` stock layers of the
        family (``narrow-ffn``: ``intermediate_size``). Default: none."""
        return {}

    def layer_spec(self, module: nn.Module) -> dict[str, Any] | None:
        """What makes ``module`` differ from a stock layer beyond what the config says
        (``low-rank``: the rank of each factorised linear map), as JSON-able values;
        None for a stock layer. Saved with the model (``theseus_successor.json``);
        :meth:`restructure` rebuilds the shapes from it when the model is loaded. A module
        with a spec may be of any class (``narrow-hidden`` wraps the family's layer);
        one without must be an instance of the predecessor's layer class."""
        return None

    def restructure(self, layer: nn.Module, spec: dict[str, Any]) -> nn.Module:
        """The module (fresh weights) of the structure ``spec`` describes, made from the
        stock ``layer`` (which it may change or wrap), so that the saved weights load into
        it. Default: ``layer`` unchanged."""
        return layer
