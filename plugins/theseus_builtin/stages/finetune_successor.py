"""``finetune-successor``: fine-tune the assembled successor (paper section 3.2, eq. 5)."""

from __future__ import annotations

from dataclasses import dataclass

from theseus_cli.errors import TheseusError
from theseus_cli.plugin import (
    DistillParams,
    Stage,
    StageContext,
    StageResult,
    TrainingParams,
    param,
    registry,
)
from theseus_cli.plugin.registry import family_of

TRAINABLE = ("successor-layers", "all")


class FinetuneSuccessor(Stage):
    """Fine-tunes the successor S = {scc_1..scc_n} with the task loss (eq. 4)."""

    name = "finetune-successor"
    help = "fine-tune the assembled successor with the task loss; keeps the best dev checkpoint"
    inputs = ("replace",)
    summary_metrics = ("score",)
    produces_successor = True

    @dataclass
    class Params(TrainingParams, DistillParams):
        learning_rate: float = param(2e-5, "peak AdamW learning rate", min=0.0)
        train: str = param("successor-layers", "which parameters train: the successor's "
                           "Transformer layers only (as the official code) or all",
                           choices=TRAINABLE)

    def run(self, ctx: StageContext) -> StageResult:
        replaced = ctx.inputs["replace"]
        teacher = ctx.lineage(replaced, "finetune-teacher")
        model, tokenizer = ctx.load_model(replaced)
        if ctx.params.train == "successor-layers":
            model.requires_grad_(False)
            for layer in family_of(model).layers(model):
                layer.requires_grad_(True)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        ctx.log.info(f"successor: {ctx.model_size(model)['layers']} layers; training "
                     f"{ctx.params.train} ({trainable:,} parameters)")
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        train_ds, loss_fn, distill = ctx.distillation(teacher, train_ds, tokenizer)
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase="finetune-successor",
                              loss_fn=loss_fn)
        model = ctx.runtime.unwrap(model)
        model.requires_grad_(True)
        ctx.save_model(model, tokenizer)
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model),
                  "method": method_label(replaced.manifest.get("info", {}), distill,
                                         replace_distill=replaced.manifest.get("info", {})
                                         .get("distillation") or {}),
                  "distillation": distill,
                  "trainable_parameters": trainable, "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2), "evaluations": outcome.evaluations},
        )


def method_label(replace_info: dict, distill: dict, replace_distill: dict) -> str:
    """The method's name in tables, e.g. ``theseus 3L, linear b=0.3 steps_to_one=300``
    (with ``+ KD α=0.5 T=2`` when either stage distilled)."""
    scheduler = replace_info.get("scheduler", {})
    params = dict(scheduler.get("params") or {})
    for key, overridden in (("k", ("fraction_to_one", "steps_to_one")),
                            ("fraction_to_one", ("steps_to_one",))):
        if params.get(key) is not None:  # the slope wins (schedulers.LinearParams)
            for name in overridden:
                params.pop(name, None)
    args = " ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    builder = replace_info.get("successor_builder") or {}
    name = builder.get("name", "first-n")
    label = f"theseus {replace_info.get('layers', '?')}L, {scheduler.get('name', '?')} {args}".strip()
    extra = _non_default(name, builder)  # e.g. ffn_fraction=0.25, init_from=pretrained
    if name != "first-n" or extra:
        label += f", {name}" + "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
                                       for k, v in extra.items())
    for where, d in (("replace", replace_distill), ("finetune", distill)):
        if d:
            label += f" + KD ({where}) α={d['distill_weight']:g} T={d['temperature']:g}"
    return label


def _non_default(name: str, builder: dict) -> dict:
    """The successor builder's params that differ from its defaults (``ffn_fraction=0.25``);
    {} when the builder is not installed."""
    import dataclasses

    try:
        cls = registry.successor_builder(name)
    except TheseusError:
        return {}
    defaults = {f.name: f.default for f in dataclasses.fields(cls.Params)
                if f.default is not dataclasses.MISSING}
    return {k: v for k, v in (builder.get("params") or {}).items()
            if k in defaults and v != defaults[k]}
