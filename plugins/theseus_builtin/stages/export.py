"""``export``: the successor as a plain Hugging Face model, with a model card."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from theseus_cli.contracts import Stage, StageContext, StageResult, param
from theseus_cli.errors import ExportError

TOLERANCE = 1e-5  # max |logit difference| accepted between theseus and the stock reload


class Export(Stage):
    """Writes the evaluated successor as safetensors + tokenizer + config (n layers)
    that stock ``AutoModelForSequenceClassification.from_pretrained`` loads, checks
    that the reloaded model gives the same logits, and adds a model card."""

    name = "export"
    help = "export the successor as a stock Hugging Face model with a model card"
    inputs = ("evaluate",)
    summary_metrics = ("logits_max_abs_diff",)

    @dataclass
    class Params:
        output: str | None = param(None, "also copy the exported model to this new directory "
                                         "(must not exist); null: only the artifact")
        check_examples: int = param(64, "dev examples whose logits are compared after reload",
                                    min=1)
        successor: str = param("finetune-successor", "export the latest evaluated successor "
                               "of this stage: finetune-successor (Theseus), truncate, distill, "
                               "...; --from evaluate=vN picks one evaluation instead")

    def accepts_input(self, name, manifest, params) -> bool:  # noqa: D102 - see Stage
        return manifest.get("params", {}).get("successor", "finetune-successor") == params.successor

    def run(self, ctx: StageContext) -> StageResult:
        import torch
        from transformers import AutoModelForSequenceClassification

        from theseus_cli import models
        from theseus_cli.data import load_tokenized, make_dataloader
        from theseus_cli.glue import get_task

        task = get_task(ctx.task)
        evaluation = ctx.inputs["evaluate"]
        successor_stage = evaluation.manifest.get("params", {}).get("successor",
                                                                    "finetune-successor")
        successor_art = ctx.lineage(evaluation, successor_stage)
        model, tokenizer = ctx.load_model(successor_art)
        out = ctx.out_dir / models.MODEL_DIR
        models.save(model, tokenizer, out)
        restructured = (out / models.SUCCESSOR_FILE).is_file()
        (out / "README.md").write_text(model_card(evaluation.manifest, task.name, ctx.config.model,
                                                  restructured))

        # the exported directory must load (with stock transformers where the successor is
        # a stock model, else with the theseus loader) and give the same logits
        stock = (models.load_restructured(out) if restructured
                 else AutoModelForSequenceClassification.from_pretrained(out))
        dev = load_tokenized(ctx.config, task, tokenizer, "dev")
        batch = next(iter(make_dataloader(dev.select(range(min(len(dev), ctx.params.check_examples))),
                                          tokenizer, ctx.params.check_examples, shuffle=False)))
        batch.pop("labels")
        model.eval(), stock.eval()
        with torch.inference_mode():
            ours, theirs = model(**batch).logits, stock(**batch).logits
        diff = logits_difference(ours, theirs)
        if not diff <= TOLERANCE:  # NaN-aware: a NaN difference fails too
            raise ExportError(f"exported model's logits differ by {diff:g} (> {TOLERANCE:g}) "
                              "from the successor inside theseus, or are not finite; nothing "
                              "was published")
        if ctx.params.output:
            copy_to(out, Path(ctx.params.output))
            ctx.log.info(f"copied to {ctx.params.output}")
        return StageResult(metrics={"logits_max_abs_diff": diff},
                           info={"successor_artifact": successor_art.name,
                                 "layers": models.num_layers(stock), "output": ctx.params.output})


def logits_difference(a, b) -> float:
    """max |a - b| over two logit tensors of shape (batch, num_labels); ``nan`` when
    either holds a NaN or infinite value (a comparison with NaN is never "close")."""
    import torch

    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("nan")
    return (a - b).abs().max().item()


def copy_to(src: Path, dest: Path) -> None:
    """Copy ``src`` to the new directory ``dest`` atomically (temp dir, then rename).

    Raises:
        ExportError: ``dest`` already exists.
    """
    dest = dest.expanduser().resolve()
    if dest.exists():
        raise ExportError(f"export output {str(dest)!r} already exists; choose a new directory")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.copytree(src, tmp)
    os.rename(tmp, dest)


def model_card(evaluation: dict, task: str, predecessor: str, restructured: bool = False) -> str:
    """A short model card (Markdown) with the metrics of the evaluate artifact; how to load
    it (stock transformers, or the theseus loader for a ``restructured`` successor)."""
    m = evaluation["metrics"]
    names = sorted({k.split("_", 1)[1] for k in m if k.startswith("successor_")
                    and k not in ("successor_parameters", "successor_layers")})
    def pct(v) -> str:
        return "n/a" if v is None else f"{100 * v:.2f}"

    rows = "\n".join(f"| {n} | {pct(m['teacher_' + n])} | {pct(m['successor_' + n])} |"
                     for n in names if "teacher_" + n in m)
    method = evaluation.get("info", {}).get("method", "theseus")
    how = ("compressed by progressive module replacing (BERT-of-Theseus, Xu et al., EMNLP 2020)"
           if method.startswith("theseus") else f"the `{method}` baseline")
    retention = "n/a" if m.get("retention") is None else f"{m['retention']:.1f}%"
    load = ("""Its layers were restructured by a successor builder (`theseus_successor.json`);
load it with the theseus loader (`pip install theseus-cli`):

```python
from pathlib import Path
from theseus_cli.models import load_saved
model, tokenizer = load_saved(Path("path/to/this/dir"))
```""" if restructured else """Load it with stock transformers:

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained("path/to/this/dir")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/dir")
```""")
    return f"""---
library_name: transformers
tags: [bert-of-theseus, model-compression, glue, {task.lower()}]
---

# {task} successor compressed with theseus

A {m['successor_layers']}-layer successor of a {m['teacher_layers']}-layer predecessor
(`{predecessor}`), {how}, made with the `theseus` CLI on {task}
(method: {method}).

| {task} dev | teacher | successor |
|---|---|---|
{rows}

- Retention (successor / teacher, paper score): {retention}
- Parameters: {m['teacher_parameters'] / 1e6:.1f}M → {m['successor_parameters'] / 1e6:.1f}M
- Measured inference speed-up: {m['speedup']:.2f}×

{load}
"""
