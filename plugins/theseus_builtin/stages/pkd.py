"""``pkd``: the BERT-PKD baseline (Sun et al. 2019; paper Table 2, "BERT-PKD").

The bottom n layers of the pretrained predecessor (as ``truncate`` and ``distill``) learn
from the fine-tuned teacher's logits and, patiently, from its intermediate layers: the
normalised hidden states of the pooled token after student layer j match those of
teacher layer m(j), every (L/n)-th (PKD-Skip) or the last n − 1 below the top (PKD-Last).
The loss and the layer maps: :mod:`theseus_cli.train.patient`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from theseus_builtin.stages.baselines import Distill, TruncatedBaseline
from theseus_cli.errors import ConfigError
from theseus_cli.plugin import CheckContext, StageContext, param
from theseus_cli.plugin.registry import family_of, kind_of
from theseus_cli.train.patient import STRATEGIES, PatientLoss, layer_map


def parse_layer_map(text: str | None) -> list[int] | None:
    """``"2,4"`` -> ``[2, 4]``; None stays None.

    Raises:
        ConfigError: an entry that is not a whole number (names it).
    """
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        return [int(t) for t in items]
    except ValueError:
        raise ConfigError(f"PKD layer map {text!r}: give comma-separated teacher layer numbers, "
                          "e.g. 2,4") from None


class Pkd(TruncatedBaseline):
    """Patient knowledge distillation into the bottom n pretrained layers (Sun et al. 2019):
    ``(1 − α)·CE + α·T²·KL + β·Σ_j ‖h_s,j/‖h_s,j‖ − h_t,m(j)/‖h_t,m(j)‖‖²``."""

    name = "pkd"
    help = ("baseline: patient knowledge distillation (BERT-PKD, Skip or Last) of the fine-tuned "
            "teacher into the bottom n pretrained layers")

    @dataclass
    class Params(Distill.Params):
        distill_weight: float = param(
            0.7, "α: weight of the distillation term, (1 − α)·CE + α·T²·KL (MSE for STS-B); "
                 "0.7, the official PKD default", min=0.0, max=1.0)
        temperature: float = param(10.0, "T: softmax temperature of the distillation term "
                                         "(the official PKD default 10)", min=0.01)
        beta: float = param(500.0, "β: weight of the patient loss, the mean squared distance of "
                                   "the normalised hidden states of matched layers (the official "
                                   "default 500)", min=0.0)
        strategy: str = param("skip", "which teacher layers teach: skip (every L/n-th: PKD-Skip) "
                                      "or last (the n − 1 below the top: PKD-Last)",
                              choices=STRATEGIES)
        layer_map: str | None = param(None, "teacher layers (1-based, comma-separated) matched to "
                                            "student layers 1 .. n − 1, instead of the strategy's; "
                                            "null: the strategy's")

    def check(self, ctx: CheckContext) -> None:
        """Besides the depth (see ``truncate``): the layer map must fit the depths, before any
        work (PKD-Skip needs n to divide L; a given map n − 1 increasing layers < L)."""
        super().check(ctx)
        params, num_layers = ctx.params, ctx.model.num_layers
        n = params.successor_layers or max(1, num_layers // 2)
        try:
            layer_map(params.strategy, num_layers, n, parse_layer_map(params.layer_map))
        except ConfigError as e:
            where = ctx.setting("layer_map" if params.layer_map is not None else "strategy")
            raise ConfigError(f"{where}: {e}") from None

    def title(self, n: int, params: Any) -> str:
        """``pkd-skip 3L``, ``pkd-last 3L``, or ``pkd 3L`` with a given layer map."""
        kind = "" if params.layer_map is not None else f"-{params.strategy}"
        return f"{self.name}{kind} {n}L"

    def loss_text(self, distill: dict[str, Any]) -> tuple[str, str]:
        """`` + KD α=0.7 β=500`` and the full recipe with T and the matched layers."""
        a, b = distill["distill_weight"], distill["beta"]
        layers = ",".join(map(str, distill["teacher_layers"])) or "none"
        return (f" + KD α={a:g} β={b:g}",
                f" + KD α={a:g} T={distill['temperature']:g}, patient β={b:g} on teacher "
                f"layers {layers}")

    def objective(self, ctx: StageContext, teacher: Any, train_ds: Any, tokenizer: Any,
                  n: int, num_layers: int) -> tuple[Any, Any, dict[str, Any]]:
        """The patient loss against the teacher version (run on each batch, eval mode)."""
        params = ctx.params
        model, _ = ctx.load_model(teacher)
        model.requires_grad_(False).eval().to(ctx.runtime.device)
        matched = layer_map(params.strategy, num_layers, n, parse_layer_map(params.layer_map))
        family = family_of(model)
        loss = PatientLoss(model, kind_of(ctx.config.task_definition(ctx.task)),
                           params.distill_weight, params.temperature, params.beta, matched,
                           family.pooled_token, ctx.runtime)
        info = {"distill_weight": params.distill_weight, "temperature": params.temperature,
                "beta": params.beta, "strategy": params.strategy, "teacher_layers": matched,
                "pooled_token": family.pooled_token, "teacher": teacher.name}
        return train_ds, loss, info
