"""Structured layer dropout (LayerDrop, Fan et al. 2019) during fine-tuning, then pruning.

While training, each of the model's L layers is skipped (its input passed on unchanged)
with probability ``rate``, drawn independently per layer once per optimizer step (the
draw depends only on (seed, step), so a resumed run redraws it). In eval mode the layers
that pruning will drop are skipped, so every dev evaluation scores the pruned model that
is published; :func:`remove` then puts the plain layers back and
:func:`theseus_cli.model.loading.keep_layers` cuts the model to the kept ones, with no
further training (the paper's Table 2 protocol, "every other" pruning).

Each skipped layer returns what the layer returns, shaped as its output: the hidden
states (batch, seq_len, hidden), or a tuple of them and Nones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from theseus_cli.errors import ConfigError
from theseus_cli.method.masks import draw_replacement_mask
from theseus_cli.method.replacing import DelegatingSlot, dummy_input_ids, pass_through, tuple_size
from theseus_cli.plugin.registry import family_of


class LayerDropState:
    """Which layers run in the next forward pass; shared by the slots (a plain object).

    Attributes:
        dropped: BoolTensor (L,) of this step's training draw (True = skipped).
        kept: the layers the pruned model keeps (0-based), the only ones run in eval mode.
        output_form: layer index -> tuple length of its output (None: a tensor).
    """

    def __init__(self, num_layers: int, kept: list[int], rate: float, seed: int):
        self.num_layers, self.kept, self.rate, self.seed = num_layers, set(kept), rate, seed
        self.dropped = torch.zeros(num_layers, dtype=torch.bool)
        self.output_form: dict[int, int | None] = {}

    def skips(self, index: int, training: bool) -> bool:
        return bool(self.dropped[index]) if training else index not in self.kept

    def before_step(self, t: int) -> dict[str, Any]:
        """Draw the layers skipped at optimizer step ``t`` (0-based); return what to log."""
        self.dropped = draw_replacement_mask(self.rate, self.num_layers, self.seed, t)  # (L,)
        return {"layers_dropped": int(self.dropped.sum())}

    def state_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "seed": self.seed, "num_layers": self.num_layers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore (the draws depend on (seed, step) only)."""


class DroppableLayer(DelegatingSlot):
    """Layer j of the family's layer list, skipped when the state says so."""

    own = ("layer", "state")

    def __init__(self, layer: nn.Module, index: int, state: LayerDropState):
        super().__init__()
        self.layer, self.index = layer, index
        object.__setattr__(self, "state", state)  # shared, not a submodule

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the layer, or pass the hidden states (batch, seq_len, hidden) through."""
        state = self.state
        if not state.skips(self.index, self.training):
            out = self.layer(*args, **kwargs)
            state.output_form[self.index] = tuple_size(out)
            return out
        return pass_through(args, kwargs, state.output_form.get(self.index))

    def _running(self) -> nn.Module:
        return self.layer


def install(model: nn.Module, rate: float, kept: list[int], seed: int) -> LayerDropState:
    """Wrap every layer of ``model`` (in place) in a :class:`DroppableLayer`; return the
    shared state, to pass to the training loop as ``before_step=state.before_step`` and
    ``extra_state=state``. One forward pass on a dummy batch (2 × 8 tokens, eval mode, no
    layer skipped) learns each layer's output form first.

    Raises:
        ConfigError: ``rate`` outside [0, 1).
    """
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"LayerDrop rate {rate!r} is outside [0, 1)")
    family = family_of(model)
    layers = family.layers(model)
    state = LayerDropState(len(layers), kept, rate, seed)
    family.install(model, [DroppableLayer(layer, j, state) for j, layer in enumerate(layers)])
    ids = dummy_input_ids(model)
    was_training, state.kept = model.training, set(range(len(layers)))
    model.eval()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    model.train(was_training)
    state.kept = set(kept)
    return state


def remove(model: nn.Module) -> None:
    """Put the plain layers back in place of the :class:`DroppableLayer` slots (in place)."""
    family = family_of(model)
    family.install(model, [slot.layer if isinstance(slot, DroppableLayer) else slot
                           for slot in family.layers(model)])
