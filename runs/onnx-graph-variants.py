"""Issue 19, item 5: which ONNX graph does ONNX Runtime run fastest on this CPU?

The embedded MiniLM (6 layers, hidden 384) as the PyTorch teacher, its bottom 3 layers
as a stand-in successor (speed only: the weights do not matter), exported and quantised
several ways; p50 latency (ms) at batch 1 and 32 of 128 tokens, all in one run, one model
after another in this process, 2 intra-op threads.

    python runs/onnx-graph-variants.py build  OUT   # export the graphs (any CPU load)
    python runs/onnx-graph-variants.py measure OUT  # time them (on an otherwise idle CPU)

Variants (fp32): dynamo exporter (the export default before this change), TorchScript
exporter with eager attention, the latter after onnxruntime.transformers.optimizer
(model_type bert: fused Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm).
int8: dynamic quantisation of each, with and without quant_pre_process, and static QDQ
int8 calibrated on 32 random batches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def build(out: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    from theseus_cli.deploy import onnx as deploy
    from theseus_cli.model import loading as models

    out.mkdir(parents=True, exist_ok=True)
    if (out / "torchscript-opt.onnx").exists():  # exported already: quantise again only
        return quantise(out)
    src = models.resolve_model_source("embedded")
    for name, attn in (("teacher", "sdpa"), ("successor", "sdpa"), ("successor-eager", "eager")):
        model = AutoModelForSequenceClassification.from_pretrained(
            src, num_labels=2, attn_implementation=attn).eval()
        if name != "teacher":
            model = models.keep_bottom_layers(model, 3)
        tok = models.load_tokenizer(src, token_level=False)
        models.save(model, tok, out / name)
    example = {"input_ids": torch.randint(5, 30000, (2, 16)),
               "attention_mask": torch.ones(2, 16, dtype=torch.int64),
               "token_type_ids": torch.zeros(2, 16, dtype=torch.int64)}
    names = list(example)
    model, _ = models.load_saved(out / "successor")
    deploy.export_onnx(model, example, names, out / "dynamo.onnx", "dynamo")
    eager = AutoModelForSequenceClassification.from_pretrained(
        out / "successor-eager", attn_implementation="eager").eval()
    deploy.export_onnx(eager, example, names, out / "torchscript.onnx", "torchscript")
    from onnxruntime.transformers.optimizer import optimize_model

    for base in ("dynamo", "torchscript"):
        opt = optimize_model(str(out / f"{base}.onnx"), model_type="bert", num_heads=12,
                             hidden_size=384, opt_level=1)
        print(base, "fused:", opt.get_fused_operator_statistics())
        opt.save_model_to_file(str(out / f"{base}-opt.onnx"))
    quantise(out)


def quantise(out: Path) -> None:
    import onnx

    FLOAT = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # com.microsoft ops' outputs
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    for base in ("dynamo", "torchscript-opt"):
        quantize_dynamic(str(out / f"{base}.onnx"), str(out / f"{base}-int8.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True, extra_options=FLOAT)
        try:
            quant_pre_process(str(out / f"{base}.onnx"), str(out / f"{base}-pre.onnx"))
        except Exception as e:  # noqa: BLE001 - symbolic shape inference fails on some graphs
            print(base, "quant_pre_process with symbolic shapes failed:", e)
            quant_pre_process(str(out / f"{base}.onnx"), str(out / f"{base}-pre.onnx"),
                              skip_symbolic_shape=True)
        quantize_dynamic(str(out / f"{base}-pre.onnx"), str(out / f"{base}-pre-int8.onnx"),
                         weight_type=QuantType.QInt8, per_channel=True, extra_options=FLOAT)
    static(out / "dynamo-pre.onnx", out / "dynamo-qdq-int8.onnx")


def static(src: Path, dest: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input_ids": rng.integers(5, 30000, (8, 64)),
                                  "attention_mask": np.ones((8, 64), np.int64),
                                  "token_type_ids": np.zeros((8, 64), np.int64)}
                                 for _ in range(32)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(src), str(dest), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True)


def measure(out: Path) -> None:
    from theseus_cli.deploy import latency

    shapes = latency.synthetic_shapes(30522, [1, 32], [128])
    rows = [("teacher", "pytorch", out / "teacher"), ("successor", "pytorch", out / "successor")]
    rows += [(p.stem, "onnx", p) for p in sorted(out.glob("*.onnx"))]
    print(f"| model | runtime | {' | '.join(s.name for s in shapes)} | vs teacher b1 |")
    print("|---|---|" + "---|" * len(shapes) + "---|")
    base = None
    for name, runtime, path in rows:
        r = latency.measure_isolated(latency.Job(runtime, str(path), "cpu", 2, shapes, warmup=3,
                                                 min_iters=10, min_seconds=3.0))
        ms = [r["shapes"][s.name]["p50_ms"] for s in shapes]
        base = base or ms[0]
        print(f"| {name} | {runtime} | {' | '.join(f'{m:.1f}' for m in ms)} | "
              f"{base / ms[0]:.2f}× |", flush=True)


if __name__ == "__main__":
    {"build": build, "measure": measure}[sys.argv[1]](Path(sys.argv[2]))
