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

Tensor shapes: hidden states are (batch, seq_len, hidden) throughout; the
attention mask is whatever the HF base model passes to its encoder (usually
(batch, 1, seq_len, seq_len) additive / boolean, or None).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions

from theseus_cli.errors import ConfigError, ExportError, ModelSourceError

#: ``config.model_type`` values whose layers module replacing can route today:
#: a ``base_model.encoder.layer`` list of BERT-style layers, with absolute positions
#: computed outside the encoder.
SUPPORTED_MODEL_TYPES = ("bert", "camembert", "electra", "roberta", "xlm-roberta")


def check_replaceable(model_type: str, source: str = "") -> None:
    """Reject a model family that module replacing does not support.

    Raises:
        ModelSourceError: names the model type, the supported ones and how a
            family is added.
    """
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelSourceError(
            f"module replacing does not support model type {model_type!r}"
            f"{f' ({source})' if source else ''}; supported: {', '.join(SUPPORTED_MODEL_TYPES)} "
            "(BERT-style encoders with base_model.encoder.layer). Choose such a model in "
            "theseus.yaml (model:); support for another family is added in "
            "theseus_cli/replacing.py (SUPPORTED_MODEL_TYPES) once its layers can be routed")

EVAL_PATHS = ("successor", "predecessor")


# ---------------------------------------------------------------- grouping --

def group_layers(num_layers: int, num_modules: int) -> list[range]:
    """Split L = ``num_layers`` layer indices into n = ``num_modules`` groups.

    Group i is ``range(i * L/n, (i + 1) * L/n)`` (consecutive layers).

    Raises:
        ConfigError: n < 1, n > L, or n does not divide L; the message lists
            the accepted module counts (the divisors of L).
    """
    if num_layers < 1:
        raise ConfigError(f"the predecessor has {num_layers} layers; need at least 1")
    if not (1 <= num_modules <= num_layers) or num_layers % num_modules:
        divisors = [d for d in range(1, num_layers + 1) if num_layers % d == 0]
        raise ConfigError(
            f"num_modules={num_modules!r} cannot split {num_layers} predecessor layers "
            f"into equal groups; accepted: {', '.join(map(str, divisors))}"
        )
    size = num_layers // num_modules
    return [range(i * size, (i + 1) * size) for i in range(num_modules)]


# ------------------------------------------------------------------ masks --

def _generator_seed(seed: int, step: int) -> int:
    """Mix (seed, step) into a 63-bit generator seed (same on every process)."""
    raw = (seed * 1_000_003 + step).to_bytes(16, "little", signed=True)
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little") >> 1


def draw_replacement_mask(p: float, num_modules: int, seed: int, step: int) -> torch.Tensor:
    """Draw r_1 .. r_n ~ Bernoulli(p) independently (eq. 2) for one optimizer step.

    The draw depends only on (seed, step): all processes of a distributed run
    draw the same mask, and a resumed run redraws identical masks. ``step`` is
    the 0-based optimizer step (not micro-batch, not epoch); the paper samples
    r once per training batch.

    Returns:
        BoolTensor of shape (num_modules,) on CPU; True = module replaced by
        its successor (r = 1). p = 0 gives all False, p = 1 all True.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"replacing rate p={p!r} is outside [0, 1]")
    if num_modules < 1:
        raise ConfigError(f"num_modules={num_modules!r} must be at least 1")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(_generator_seed(int(seed), int(step)))
    u = torch.rand(num_modules, generator=gen)  # (n,) uniform in [0, 1)
    return u < p


MASK_DEBUG_ENV = "THESEUS_DEBUG_MASK_DIR"


def scheduler_rate(scheduler: Any, t: int) -> float:
    """``scheduler.rate(t)``, checked to be a finite number in [0, 1].

    Raises:
        PluginError: names the scheduler plugin, the optimizer step and the value.
    """
    import math

    from theseus_cli.errors import PluginError

    name = getattr(scheduler, "name", type(scheduler).__name__)
    try:
        p = scheduler.rate(t)
    except Exception as e:  # noqa: BLE001 - a third-party plugin may raise anything
        raise PluginError(f"scheduler {name!r} failed at optimizer step {t}: "
                          f"{type(e).__name__}: {e}") from e
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) \
            or not 0.0 <= p <= 1.0:
        raise PluginError(f"scheduler {name!r} returned rate {p!r} at optimizer step {t}; "
                          "a replacing rate must be a number in [0, 1] (contract: "
                          "theseus_cli.contracts.Scheduler.rate)")
    return float(p)


class ReplacingSchedule:
    """Per optimizer step: the scheduler's p, then the module mask (eq. 2) for the encoder.

    Used as ``train(before_step=schedule.before_step, extra_state=schedule)``.
    The mask of step t depends only on (seed, t) (:func:`draw_replacement_mask`),
    so all processes draw the same mask and a resumed run redraws it; the
    scheduler's own state (if any) is saved in checkpoints.

    Debugging: when the environment variable ``THESEUS_DEBUG_MASK_DIR`` names a
    directory, every process appends ``{"step", "p", "mask", "rank"}`` per
    optimizer step to ``masks-rank<k>.jsonl`` there (off by default).

    Args:
        scheduler: a ``contracts.Scheduler``.
        encoder: the hybrid's :class:`TheseusEncoder`.
        seed: the run seed.
        rank: this process's index (names the debug file).
    """

    def __init__(self, scheduler: Any, encoder: TheseusEncoder, seed: int, rank: int = 0):
        import os

        self.scheduler, self.encoder, self.seed, self.rank = scheduler, encoder, int(seed), rank
        debug = os.environ.get(MASK_DEBUG_ENV)
        self.debug_file = None
        if debug:
            from pathlib import Path

            Path(debug).mkdir(parents=True, exist_ok=True)
            self.debug_file = Path(debug) / f"masks-rank{rank}.jsonl"

    def before_training(self, total_steps: int) -> None:
        """Tell the scheduler the stage's planned optimizer steps (``Scheduler.bind``)."""
        self.scheduler.bind(total_steps)

    def before_step(self, t: int) -> dict[str, Any]:
        """Set the mask of optimizer step ``t`` (0-based); return what to log.

        ``grad_path`` is False when every module drew its frozen predecessor.

        Raises:
            PluginError: the scheduler plugin raised, or returned a rate that is
                not a number in [0, 1] (names the plugin and the step).
        """
        p = scheduler_rate(self.scheduler, t)
        mask = draw_replacement_mask(p, self.encoder.num_modules, self.seed, t)  # (n,) bool
        self.encoder.set_replacement_mask(mask)
        bits = [int(r) for r in mask.tolist()]
        if self.debug_file is not None:
            from theseus_cli import jsonio

            with open(self.debug_file, "a", encoding="utf-8") as f:
                f.write(jsonio.dumps({"step": t, "p": p, "mask": bits, "rank": self.rank}) + "\n")
        return {"p": p, "mask": bits, "grad_path": any(bits)}

    def state_dict(self) -> dict[str, Any]:
        """Scheduler state and the mask generator's identity (seed, modules)."""
        return {"scheduler": type(self.scheduler).__name__,
                "scheduler_state": self.scheduler.state_dict(),
                "mask_generator": {"kind": "blake2b(seed, step) -> torch.Generator",
                                   "seed": self.seed, "num_modules": self.encoder.num_modules}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the scheduler state; check the masks would be the same.

        Raises:
            CheckpointError: the checkpoint used another seed or module count.
        """
        from theseus_cli.errors import CheckpointError

        gen = state["mask_generator"]
        if (gen["seed"], gen["num_modules"]) != (self.seed, self.encoder.num_modules):
            raise CheckpointError(
                f"checkpoint drew masks with seed {gen['seed']} over {gen['num_modules']} modules, "
                f"this run uses seed {self.seed} over {self.encoder.num_modules}; rerun with "
                "--restart to start over")
        self.scheduler.load_state_dict(state["scheduler_state"])


# ---------------------------------------------------------------- encoder --

class TheseusEncoder(nn.Module):
    """Drop-in replacement for ``model.base_model.encoder`` (BertEncoder, ...).

    Attributes:
        predecessor: nn.ModuleList of the L predecessor layers (frozen).
        successor: nn.ModuleList of the n successor modules (trainable).
        groups: ``groups[i]`` = indices of the predecessor layers of module i.
        eval_path: ``"successor"`` (eq. 5, default) or ``"predecessor"``; which
            path runs in eval mode.
        replacement_mask: BoolTensor (n,) set by :meth:`set_replacement_mask`;
            used in training mode only.
    """

    def __init__(self, predecessor: nn.ModuleList, successor: nn.ModuleList, config: Any = None):
        super().__init__()
        self.groups = group_layers(len(predecessor), len(successor))
        self.predecessor = predecessor
        self.successor = successor
        self.config = config
        self.eval_path = "successor"
        self.replacement_mask: torch.Tensor | None = None

    @property
    def num_modules(self) -> int:
        return len(self.successor)

    def set_replacement_mask(self, mask: torch.Tensor | None) -> None:
        """Set r (BoolTensor (n,), True = use successor module) for the next
        training forward passes; typically once per optimizer step."""
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool).cpu()
            if mask.shape != (self.num_modules,):
                raise ValueError(
                    f"replacement mask has shape {tuple(mask.shape)}, expected ({self.num_modules},)"
                )
        self.replacement_mask = mask

    def _use_successor(self) -> list[bool]:
        """Per module: run the successor (True) or the predecessor group (False)."""
        if self.training:
            if self.replacement_mask is None:
                raise RuntimeError(
                    "TheseusEncoder is in training mode but no replacement mask was set; "
                    "call set_replacement_mask(draw_replacement_mask(...)) before forward"
                )
            return self.replacement_mask.tolist()
        if self.eval_path not in EVAL_PATHS:
            raise ValueError(f"eval_path={self.eval_path!r}; accepted: {', '.join(EVAL_PATHS)}")
        return [self.eval_path == "successor"] * self.num_modules

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """Run the hybrid (eq. 3, training) or one pure path (eval).

        Args:
            hidden_states: (batch, seq_len, hidden) embedding output.
            attention_mask: as prepared by the base model; passed to each layer.
        Returns:
            ``last_hidden_state`` of shape (batch, seq_len, hidden).
        """
        for i, use_scc in enumerate(self._use_successor()):
            layers = [self.successor[i]] if use_scc else [self.predecessor[j] for j in self.groups[i]]
            for layer in layers:
                hidden_states = layer(
                    hidden_states,
                    attention_mask,
                    encoder_hidden_states,
                    encoder_attention_mask=encoder_attention_mask,
                    past_key_values=past_key_values,
                    **kwargs,
                )  # (batch, seq_len, hidden)
        return BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=hidden_states,
            past_key_values=past_key_values if use_cache else None,
        )


# ----------------------------------------------------------------- hybrid --

def _theseus_encoder(model: nn.Module) -> TheseusEncoder:
    enc = getattr(getattr(model, "base_model", None), "encoder", None)
    if not isinstance(enc, TheseusEncoder):
        raise ExportError(
            f"{type(model).__name__} is not a hybrid model (its base_model.encoder is "
            f"{type(enc).__name__}, not TheseusEncoder); build it with make_hybrid"
        )
    return enc


def make_hybrid(
    predecessor: PreTrainedModel, successor_modules: nn.ModuleList, num_modules: int
) -> PreTrainedModel:
    """Turn a fine-tuned ``*ForSequenceClassification`` into the hybrid model.

    Modifies ``predecessor`` in place and returns it: ``base_model.encoder``
    becomes a :class:`TheseusEncoder` over its existing ``encoder.layer`` list
    and ``successor_modules`` (moved to the predecessor's device). Every
    predecessor parameter (embeddings, layers, pooler, classifier) gets
    requires_grad=False; every successor parameter requires_grad=True.

    Raises:
        ConfigError: no ``base_model.encoder.layer`` ModuleList, or the number
            of successor modules differs from ``num_modules`` / does not divide L.
    """
    model_type = getattr(getattr(predecessor, "config", None), "model_type", None)
    if model_type is not None:
        check_replaceable(model_type)
    base = getattr(predecessor, "base_model", None)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(
            f"{type(predecessor).__name__} has no base_model.encoder.layer ModuleList; "
            "module replacing supports BERT-family encoders (BERT, RoBERTa, ...)"
        )
    group_layers(len(layers), num_modules)  # validates n against L
    if len(successor_modules) != num_modules:
        raise ConfigError(
            f"got {len(successor_modules)} successor modules for num_modules={num_modules}"
        )
    for prm in predecessor.parameters():
        prm.requires_grad_(False)
    device = next(predecessor.parameters()).device
    successor_modules = successor_modules.to(device)
    for prm in successor_modules.parameters():
        prm.requires_grad_(True)
    base.encoder = TheseusEncoder(layers, successor_modules, config=getattr(encoder, "config", None))
    return predecessor


def assemble_successor(hybrid: PreTrainedModel) -> PreTrainedModel:
    """Build the compact successor model S = {scc_1 .. scc_n} (eq. 5).

    Returns a NEW model of the hybrid's class whose config is a copy with
    ``num_hidden_layers = n``; embeddings, pooler and classifier are copied
    from the predecessor and encoder layer i is a copy of successor module i.
    In eval mode it gives exactly the hybrid's eval (successor path) logits.
    The hybrid is not modified.

    Raises:
        ExportError: the model is not a hybrid, or a successor module is not an
            instance of the predecessor's layer class.
    """
    enc = _theseus_encoder(hybrid)
    layer_cls = type(enc.predecessor[0])
    for i, module in enumerate(enc.successor):
        if not isinstance(module, layer_cls):
            raise ExportError(
                f"successor module {i} is a {type(module).__name__}, not the predecessor's "
                f"layer class {layer_cls.__name__}; it cannot be exported as a stock model"
            )
    config = copy.deepcopy(hybrid.config)
    config.num_hidden_layers = enc.num_modules
    ref = next(hybrid.parameters())
    successor = type(hybrid)(config).to(device=ref.device, dtype=ref.dtype)

    # Everything outside the encoder: embeddings, pooler, classifier.
    enc_prefix = f"{hybrid.base_model_prefix}.encoder." if hybrid.base_model is not hybrid else "encoder."
    outer = {k: v for k, v in hybrid.state_dict().items() if not k.startswith(enc_prefix)}
    missing, unexpected = successor.load_state_dict(outer, strict=False)
    bad = [k for k in missing if not k.startswith(enc_prefix)] + list(unexpected)
    if bad:
        raise ExportError(f"state dict mismatch while exporting the successor: {bad[:5]}")
    for dst, src in zip(successor.base_model.encoder.layer, enc.successor):
        dst.load_state_dict(src.state_dict(), strict=True)
    for prm in successor.parameters():
        prm.requires_grad_(True)
    successor.train(hybrid.training)
    return successor


# ------------------------------------------------------------- parameters --

def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters with requires_grad=True (for a hybrid: the successor modules)."""
    return [prm for prm in model.parameters() if prm.requires_grad]


def _numel(module: nn.Module | None) -> int:
    return 0 if module is None else sum(prm.numel() for prm in module.parameters())


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Count parameters (unique tensors; tied weights counted once).

    Keys for any model: ``total``, ``embeddings``, ``encoder`` and ``other``
    (= total - embeddings - encoder: pooler + classifier head).
    For a hybrid, ``encoder`` counts predecessor layers plus successor modules
    and two more keys are added: ``predecessor_path`` (embeddings + the L
    predecessor layers + other, i.e. the original model) and
    ``successor_path`` (embeddings + the n successor modules + other, i.e. the
    size of the model :func:`assemble_successor` exports).
    """
    base = getattr(model, "base_model", model)
    total = _numel(model)
    emb = _numel(getattr(base, "embeddings", None))
    encoder = getattr(base, "encoder", None)
    enc = _numel(encoder)
    counts = {"total": total, "embeddings": emb, "encoder": enc, "other": total - emb - enc}
    if isinstance(encoder, TheseusEncoder):
        counts["predecessor_path"] = emb + _numel(encoder.predecessor) + counts["other"]
        counts["successor_path"] = emb + _numel(encoder.successor) + counts["other"]
    return counts
