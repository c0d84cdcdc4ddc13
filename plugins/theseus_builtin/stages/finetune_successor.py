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
    help = ("fine-tune the assembled successor (task loss, + KD when set) until its dev score "
            "stops improving; keeps the best dev checkpoint")
    inputs = ("replace",)
    summary_metrics = ("score",)
    produces_successor = True

    @dataclass
    class Params(TrainingParams, DistillParams):
        learning_rate: float = param(2e-5, "peak AdamW learning rate", min=0.0)
        patience: int | None = param(
            2, "early stopping: stop after this many dev evaluations in a row without a new "
               "best score; null: train every epoch", min=1)
        train: str = param("successor-layers", "which parameters train: the successor's "
                           "Transformer layers (and a compressed word embedding) only, as "
                           "the official code, or all",
                           choices=TRAINABLE)

    def run(self, ctx: StageContext) -> StageResult:
        replaced = ctx.inputs["replace"]
        teacher = ctx.lineage(replaced, "finetune-teacher")
        model, tokenizer = ctx.load_model(replaced)
        if ctx.params.train == "successor-layers":
            model.requires_grad_(False)
            for layer in family_of(model).layers(model):
                layer.requires_grad_(True)
            embedding = model.get_input_embeddings()
            if callable(getattr(embedding, "spec", None)):  # a successor module too (replace
                embedding.requires_grad_(True)               # --embedding-rank)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        ctx.log.info(f"successor: {ctx.model_size(model)['layers']} layers; training "
                     f"{ctx.params.train} ({trainable:,} parameters)")
        train_ds = ctx.dataset("train", tokenizer)
        dev_ds = ctx.dataset("selection", tokenizer)  # dev or holdout
        train_ds, loss_fn, distill = ctx.distillation(teacher, train_ds, tokenizer)
        # step 0 scores the replaced successor itself: no epoch that scores below it is kept
        outcome = ctx.train(model, tokenizer, train_ds, dev_ds, phase="finetune-successor",
                            loss_fn=loss_fn, evaluate_input=True)
        ctx.log.info(outcome.stop_line())
        model = ctx.runtime.unwrap(model)
        model.requires_grad_(True)
        ctx.save_model(model, tokenizer)
        replace_info = replaced.manifest.get("info", {})
        label, recipe = method_label(replace_info, distill,
                                     replace_distill=replace_info.get("distillation") or {})
        return StageResult(
            metrics={**outcome.best_metrics, "best_step": outcome.best_step},
            info={**ctx.model_size(model), "method": label, "recipe": recipe,
                  "distillation": distill,
                  "trainable_parameters": trainable, "optimizer_steps": outcome.steps,
                  "train_seconds": round(outcome.seconds, 2), **outcome.stop_record(),
                  "evaluations": outcome.evaluations},
        )


def method_label(replace_info: dict, distill: dict, replace_distill: dict) -> tuple[str, str]:
    """``(label, recipe)`` of a Theseus successor for tables.

    The label is short and always names the loss: ``theseus 3L + KD α=0.5`` (vanilla KD
    in either stage; ``α=0.5/0.3`` when replace and finetune-successor differ) or
    ``theseus 3L, task loss``, with the successor builder when not ``first-n`` and the
    scheduler when not ``linear``. The recipe is the whole of it, for the legend under a
    table: ``theseus 3L, linear b=0.3 fraction_to_one=0.65 + KD (replace) α=0.5 T=2 + KD
    (finetune) α=0.5 T=2``."""
    scheduler = replace_info.get("scheduler", {})
    sched_name = scheduler.get("name", "?")
    params = dict(scheduler.get("params") or {})
    for key, overridden in (("k", ("fraction_to_one", "steps_to_one")),
                            ("fraction_to_one", ("steps_to_one",))):
        if params.get(key) is not None:  # the slope wins (schedulers.LinearParams)
            for name in overridden:
                params.pop(name, None)
    args = " ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    builder = replace_info.get("successor_builder") or {}
    name = builder.get("name", "first-n")
    layers = f"theseus {replace_info.get('layers', '?')}L"
    recipe = f"{layers}, {sched_name} {args}".strip()
    label = layers + (f", {sched_name}" if sched_name != "linear" else "")
    extra = _non_default(name, builder)  # e.g. ffn_fraction=0.25, init_from=pretrained
    if name != "first-n" or extra:
        shown = "".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
                        for k, v in extra.items())
        recipe += f", {name}{shown}"
        label += f", {name}{shown}"
    embedding = replace_info.get("embedding")
    if embedding:  # replace --embedding-rank / --embedding-energy
        recipe += f", word embedding rank {embedding['rank']}"
        label += f", emb r={embedding['rank']}"
    for where, d in (("replace", replace_distill), ("finetune", distill)):
        if d:
            recipe += f" + KD ({where}) α={d['distill_weight']:g} T={d['temperature']:g}"
    alphas = list(dict.fromkeys(f"{d['distill_weight']:g}" for d in (replace_distill, distill)
                                if d))
    label += f" + KD α={'/'.join(alphas)}" if alphas else ", task loss"
    return label, recipe + ("" if alphas else ", task loss")


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
