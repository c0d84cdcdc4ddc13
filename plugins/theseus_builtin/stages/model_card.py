"""The model card (``README.md``) of an exported model: Hugging Face metadata with
``base_model`` and ``model-index`` results, the recipe that made it, its scores and
speed per format, and how to load each exported format."""

from __future__ import annotations

from typing import Any

import yaml

from theseus_builtin.stages.method_table import SIZES
from theseus_cli.plugin import selector_of

#: GLUE metric names -> the display names the Hub's model-index uses
_METRIC_NAMES = {"accuracy": "Accuracy", "f1": "F1", "matthews_correlation": "Matthews Correlation",
                 "pearson": "Pearson Correlation", "spearmanr": "Spearman Correlation",
                 "macro_f1": "Macro F1", "mse": "Mean Squared Error"}
#: params that say nothing about the recipe (where files go, how often to checkpoint)
_NOT_RECIPE = {"output", "check_examples", "save_every", "save_every_minutes", "speed_batches",
               "speed_repeats", "predict_test", "card_speed"}


def model_index(name: str, task: str, metrics: dict[str, float],
                glue: bool = True) -> list[dict[str, Any]]:
    """The card's ``model-index``: one result on the task's validation split (GLUE's, or the
    user's own data set, named by the task), one entry per metric (``metrics``: name ->
    value in [0, 1], reported in percent)."""
    dataset = ({"name": f"GLUE {task}", "type": "nyu-mll/glue", "config": task.lower(),
                "split": "validation"} if glue else
               {"name": task, "type": task, "split": "validation"})
    return [{"name": name, "results": [{
        "task": {"type": "text-classification", "name": "Text Classification"},
        "dataset": dataset,
        "metrics": [{"type": k, "value": round(100 * v, 2), "name": _METRIC_NAMES.get(k, k)}
                    for k, v in metrics.items() if v == v]}]}]


def recipe(ancestors: list[Any]) -> str:
    """Markdown list of the stages that made the model, in the order they ran: stage,
    version, seed and the params each ran with."""
    lines = []
    for art in ancestors:
        m = art.manifest
        raw = m.get("params", {})
        params = {}
        for k, v in raw.items():
            chosen = raw.get(selector_of(k)) if k.endswith("s") else None
            if isinstance(v, dict) and isinstance(chosen, str):  # schedulers: the one used
                v, k = v.get(chosen, {}), f"{selector_of(k)}_args"
            if k not in _NOT_RECIPE and v is not None and v != {}:
                params[k] = v
        seed = m.get("config", {}).get("runtime", {}).get("seed")
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        lines.append(f"1. `{art.stage}` ({art.label}, seed {seed}): {shown or 'defaults'}")
    return "\n".join(lines)


def _loading(fmt: str, restructured: bool,
             model_class: str = "AutoModelForSequenceClassification",
             info: dict[str, Any] | None = None) -> str:
    if fmt == "hf" and restructured:
        return """Its layers were restructured by a successor builder (`theseus_successor.json`);
load it with the theseus loader (`pip install theseus-cli`):

```python
from pathlib import Path
from theseus_cli.model.loading import load_saved
model, tokenizer = load_saved(Path("model"))
```"""
    if fmt == "hf":
        form = (info or {}).get("stock_form")
        return (f"The successor is written as a {form}; its logits equal the theseus "
                "model's (checked at export). " if form else "") + f"""Load it with stock transformers:

```python
from transformers import {model_class}, AutoTokenizer
model = {model_class}.from_pretrained("model")
tokenizer = AutoTokenizer.from_pretrained("model")
```"""
    shape = ("(batch, seq_len, num_labels): one row per token" if "Token" in model_class
             else "(batch, num_labels)")
    return f"""ONNX Runtime (no PyTorch needed; inputs are int64 (batch, seq_len), output
`logits` {shape}):

```python
import onnxruntime as ort
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{fmt}")
session = ort.InferenceSession("{fmt}/model.onnx")
enc = tokenizer(["first sentence"], ["second sentence"], return_tensors="np")
logits = session.run(["logits"], {{i.name: enc[i.name] for i in session.get_inputs()}})[0]
```{_fused_note(info)}"""


def _fused_note(info: dict[str, Any] | None) -> str:
    """Says when a graph holds ONNX Runtime's own fused operators (``com.microsoft``)."""
    fused = ((info or {}).get("optimization") or {}).get("fused")
    if not fused:
        return ""
    return ("\n\nThe graph is fused for ONNX Runtime (" + ", ".join(sorted(fused)) +
            ": `com.microsoft` operators); for another ONNX runtime, export again with "
            "`--no-onnx-fuse`.")


def render(*, task: str, predecessor: str, role: str, metrics: dict[str, Any],
           scores: dict[str, float], method: str, ancestors: list[Any],
           formats: dict[str, dict[str, Any]], restructured: bool,
           speed: dict[str, Any] | None = None, glue: bool = True,
           model_class: str = "AutoModelForSequenceClassification") -> str:
    """The card, Markdown with YAML front matter.

    Args:
        role: ``"successor"`` or ``"teacher"`` (what is exported).
        metrics: the evaluate artifact's metrics (successor), or the teacher's dev metrics.
        scores: GLUE metric name -> dev value in [0, 1] of the exported model (PyTorch).
        formats: format -> ``{"path", "mb", "score", ...}`` of what was exported.
        speed: the export's speed table (``export._speed_table``), or None.
        glue: a GLUE task (else the user's own data: no GLUE dataset metadata).
        model_class: the task kind's Auto class, shown in the loading snippet.
    """
    where = f"GLUE {task}" if glue else task
    name = f"{task.lower()}-{role}-theseus"
    front = {"library_name": "transformers", "base_model": predecessor,
             "pipeline_tag": ("token-classification" if "Token" in model_class
                              else "text-classification"),
             "tags": ["bert-of-theseus", "model-compression", *(["glue"] if glue else []),
                      task.lower(), "onnx" if any(f != "hf" for f in formats) else "pytorch"],
             **({"datasets": ["nyu-mll/glue"]} if glue else {}),
             "model-index": model_index(name, task, scores, glue)}
    if role == "successor":
        how = ("compressed by progressive module replacing (BERT-of-Theseus, Xu et al., "
               "EMNLP 2020)" if method.startswith("theseus") else f"the `{method}` baseline")
        retention = ("n/a" if metrics.get("retention") is None
                     else f"{metrics['retention']:.1f}%")
        head = (f"A {metrics['successor_layers']}-layer successor of a "
                f"{metrics['teacher_layers']}-layer predecessor (`{predecessor}`), {how}, "
                f"made with the `theseus` CLI on {where} (method: {method}).\n\n"
                f"- Retention (successor / teacher, paper score): {retention}\n"
                f"- Parameters: {_size(metrics, 'teacher')} → {_size(metrics, 'successor')}\n"
                f"- Speed-up over the teacher measured by `evaluate` (PyTorch, "
                f"dev batches): {metrics['speedup']:.2f}×\n")
        names = sorted({k.split("_", 1)[1] for k in metrics if k.startswith("successor_")
                        and k.removeprefix("successor_") not in SIZES})
        rows = "\n".join(f"| {n} | {_pct(metrics.get('teacher_' + n))} | "
                         f"{_pct(metrics.get('successor_' + n))} |" for n in names)
        table = f"| {task} dev | teacher | successor |\n|---|---|---|\n{rows}\n"
    else:
        head = (f"The fine-tuned predecessor (`{predecessor}`, the teacher of theseus's "
                f"successors) on {where}, exported by the `theseus` CLI.\n")
        table = (f"| {task} dev | teacher |\n|---|---|\n"
                 + "\n".join(f"| {k} | {_pct(v)} |" for k, v in scores.items()) + "\n")
    teacher_mb = metrics.get("teacher_weights_mb")  # evaluate's, of the fp32 weights file
    fmt_rows = "\n".join(f"| `{f}` | `{info['path']}` | {info['mb']:.1f} | "
                         f"{_smaller(teacher_mb, info['mb'])} | "
                         f"{_pct(info.get('score'))} | {info.get('parity', '')} |"
                         for f, info in formats.items())
    loading = "\n\n".join(f"### `{f}`\n\n{_loading(f, restructured, model_class, formats[f])}"
                        for f in formats)
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {where} {role} made with theseus

{head}
{table}
## Exported formats

| format | file | MB | × smaller than the teacher's fp32 weights | dev score | parity |
|---|---|---|---|---|---|
{fmt_rows}

{speed_section(speed)}

## Recipe

{recipe(ancestors)}

## How to load

{loading}
"""


def speed_section(speed: dict[str, Any] | None) -> str:
    """``## Speed``: p50 latency (ms) and speed-up over the PyTorch teacher per format."""
    more = ("`theseus benchmark` measures every model and format at more shapes, on real "
            "dev batches, with p90, throughput and peak memory.")
    if not speed:
        return "## Speed\n\n" + more + "\n"
    shapes = list(speed["rows"][0]["p50_ms"])
    rows = "\n".join(f"| {r['model']} | {r['format']} | " + " | ".join(
        f"{r['p50_ms'][s]:.1f} ms ({r['speedup'][s]:.2f}×)" for s in shapes) + " |"
        for r in speed["rows"])
    return (f"## Speed\n\np50 latency per call on {speed['machine']} ({speed['threads']} "
            "threads, measured by `theseus export`; bB×sS: batch B of S tokens):\n\n"
            f"| model | format | {' | '.join(shapes)} |\n|---|---|{'---|' * len(shapes)}\n"
            f"{rows}\n\n{more}\n")


def _smaller(teacher_mb: float | None, mb: float | None) -> str:
    return "n/a" if not teacher_mb or not mb else f"{teacher_mb / mb:.1f}×"


def _pct(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}"


def _size(metrics: dict, role: str) -> str:
    """``22.7M (word embedding 11.7M)``; without the embedding when it was not counted."""
    total, emb = metrics[f"{role}_parameters"], metrics.get(f"{role}_embedding_parameters")
    return f"{total / 1e6:.1f}M" + ("" if emb is None else f" (word embedding {emb / 1e6:.1f}M)")
