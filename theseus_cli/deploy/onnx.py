"""Deployable forms of a model: ONNX (fp32) and ONNX int8, run by ONNX Runtime.

Export goes through PyTorch's own ONNX exporter (``torch.onnx.export``): by default the
TorchScript-based one with eager attention, whose graph ONNX Runtime's transformer
optimizer (``onnxruntime.transformers.optimizer``) recognises and fuses (Attention,
SkipLayerNormalization, BiasGelu, EmbedLayerNormalization), the ``torch.export``-based one
(dynamo) as a fallback. Measured on the embedded model's 3-layer successor, 2 CPU threads
(``runs/onnx-graph-variants.py``): the fused graph is 1.2× faster than the dynamo
graph, whose attention the optimizer does not recognise.
Optimum's ONNX exporter, the Hugging Face one, cannot be used: its newest release
(optimum-onnx 0.1.0) requires transformers < 4.58 and theseus needs transformers 5;
it would not know the restructured successor types either. Tracing the model
itself exports every successor type, stock or not. int8 is ONNX Runtime's dynamic
quantisation (weights int8 per channel, activations quantised at run time) of that graph
after ``quant_pre_process``; static QDQ int8 was measured 2.5-7× slower on this CPU
and is not offered.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from theseus_cli.data.batching import concat_padded
from theseus_cli.errors import ConfigError, ExportError

#: formats ``theseus export --format`` writes, each in a directory of that name
FORMATS = ("hf", "onnx", "onnx-int8")
ONNX_FORMATS = ("onnx", "onnx-int8")
ONNX_FILE = "model.onnx"
EXPORTERS = ("auto", "torchscript", "dynamo")
#: what ``auto`` tries, in order
AUTO_ORDER = ("torchscript", "dynamo")
#: inputs an ONNX graph may take, in this order (those the tokenizer gives and the model reads)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 18
#: the TorchScript exporter's opset (the newest it writes well)
TORCHSCRIPT_OPSET = 17


def parse_formats(text: str) -> tuple[str, ...]:
    """``"hf,onnx"`` -> ``("hf", "onnx")`` (order of :data:`FORMATS`, duplicates dropped).

    Raises:
        ConfigError: empty, or a name outside :data:`FORMATS` (named, with the accepted ones).
    """
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        shown = f"{bad[0]!r}" if bad else "nothing"
        raise ConfigError(f"export format {shown}: accepted: {', '.join(FORMATS)} "
                          "(comma-separated, any combination, e.g. hf,onnx,onnx-int8)")
    return tuple(f for f in FORMATS if f in names)


def require_onnx(needed_by: str, packages: tuple[str, ...] = ("onnx", "onnxruntime",
                                                              "onnxscript"),
                 instead: str = "leave the ONNX formats out (--format hf)") -> None:
    """Check that the ONNX packages ``needed_by`` (the option or models that need them,
    for the message) can be imported here; ``instead`` says what works without them.

    Raises:
        ConfigError: naming the package that cannot be imported, what needs it and how to
            install it (exit status 2, as for any setting this machine cannot serve).
    """
    for package in packages:
        try:
            __import__(package)
        except ImportError as e:
            raise ConfigError(
                f"{needed_by} needs the package {package!r}, which cannot be imported "
                f"({type(e).__name__}: {e}); install it with `pip install {package}` (it is a "
                "dependency of theseus-cli: `pip install theseus-cli` restores it), or "
                f"{instead}") from None


def input_names(model: Any, tokenizer: Any) -> list[str]:
    """The ONNX graph's inputs: those of :data:`INPUT_NAMES` the tokenizer produces and
    ``model.forward`` accepts (BERT: ids, mask, token types; RoBERTa: ids, mask)."""
    accepted = inspect.signature(model.forward).parameters
    given = set(getattr(tokenizer, "model_input_names", INPUT_NAMES))
    return [n for n in INPUT_NAMES if n in accepted and n in given]


def logits_module(model: Any, names: list[str]) -> Any:
    """An ``nn.Module`` (eval mode) taking the inputs ``names`` positionally and returning
    only the logits (batch, num_labels): the signature of the ONNX graph."""
    from torch import nn

    class Logits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):  # each (batch, seq_len) int64
            # (batch, num_labels); token classification (batch, seq_len, num_labels)
            return self.model(**dict(zip(names, tensors, strict=False))).logits

    return Logits().eval()


def export_onnx(model: Any, example: dict[str, Any], names: list[str], path: Path,
                exporter: str = "torchscript") -> dict[str, Any]:
    """Write ``model`` (a ``*ForSequenceClassification`` or ``*ForTokenClassification``,
    any successor type) as an ONNX graph at ``path`` with one exporter: inputs ``names``,
    each int64 (batch, seq_len) with both axes dynamic; output ``logits`` (batch,
    num_labels) or (batch, seq_len, num_labels), fp32. ``export``'s stage tries the
    exporters of ``auto`` in turn, keeping the first whose graph passes parity.

    Args:
        example: a batch of those inputs to trace with (tensors on the CPU).
        exporter: ``torchscript`` (traced with eager attention, the graph ONNX Runtime's
            optimizer fuses) or ``dynamo`` (``torch.export``).

    Returns:
        ``{"exporter": exporter, "opset": n}``.

    Raises:
        ExportError: the exporter failed (its error named), or ``exporter`` is not one of
            ``AUTO_ORDER``.
    """
    if exporter not in AUTO_ORDER:
        raise ExportError(f"unknown ONNX exporter {exporter!r}; accepted: "
                          f"{', '.join(AUTO_ORDER)}")
    model = model.float().cpu().eval()
    module = logits_module(model, names)
    with _quiet():
        return _export(module, args_of(example, names), names, path, exporter)


def args_of(example: dict[str, Any], names: list[str]) -> tuple:
    """The graph's positional inputs, on the CPU."""
    return tuple(example[n].cpu() for n in names)


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' and the quantiser's progress notes and warnings (torchvision
    ops skipped, axis renames, "consider pre-processing") out of the user's console."""
    noisy = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "root")]
    levels = [lg.level for lg in noisy]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in noisy:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(noisy, levels, strict=False):
                lg.setLevel(level)


def _export(module: Any, args: tuple, names: list[str], path: Path, how: str) -> dict:
    import torch

    try:
        with torch.inference_mode(False), torch.no_grad():
            if how == "dynamo":
                batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq_len")
                torch.onnx.export(module, args, str(path), input_names=names,
                                  output_names=["logits"], dynamo=True, opset_version=OPSET,
                                  dynamic_shapes=(tuple({0: batch, 1: seq} for _ in names),),
                                  external_data=False, verbose=False)
            else:
                axes = {n: {0: "batch", 1: "seq_len"} for n in names}
                with _eager_attention(module.model):
                    out_dims = module(*args).dim()  # (B, C) or (B, L, C)
                    logits_axes = {0: "batch", 1: "seq_len"} if out_dims == 3 else {0: "batch"}
                    torch.onnx.export(module, args, str(path), input_names=names,
                                      output_names=["logits"], dynamo=False,
                                      opset_version=TORCHSCRIPT_OPSET,
                                      dynamic_axes={**axes, "logits": logits_axes})
    except Exception as e:  # any exporter failure becomes a typed error
        path.unlink(missing_ok=True)
        raise ExportError(f"{how} exporter failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:300]}") from e
    return {"exporter": how, "opset": OPSET if how == "dynamo" else TORCHSCRIPT_OPSET}


@contextlib.contextmanager
def _eager_attention(model: Any):
    """``model`` with eager (explicit matmul-softmax-matmul) attention while inside: the
    pattern ONNX Runtime's attention fusion recognises (SDPA traces to one opaque op
    chain it does not). Models that cannot switch keep their own."""
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switched = False
    try:
        if before not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
            switched = True
    except (ValueError, ImportError, AttributeError, TypeError):
        pass
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(before)


def optimize_graph(src: Path, dest: Path, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuse the fp32 graph ``src`` for ONNX Runtime into ``dest`` with
    ``onnxruntime.transformers.optimizer`` (model type ``bert``, offline level 1, which
    keeps the graph free of hardware-specific layouts): multi-head attention into
    ``Attention``, residual + LayerNorm into ``SkipLayerNormalization``, bias + GELU into
    ``BiasGelu``, embeddings + LayerNorm into ``EmbedLayerNormalization``, where the graph
    has those patterns. The result holds ``com.microsoft`` operators: ONNX Runtime runs
    it, other runtimes may not (export with ``--no-onnx-fuse`` for those).

    Args:
        num_heads: attention heads per layer; hidden_size: heads × head size (features
            into the attention); 0 and 0 when the layers differ (attention then stays
            unfused).

    Returns:
        ``{fused operator: count}`` for the operators it made (count > 0).

    Raises:
        ExportError: the optimizer failed (its reason named).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with _quiet():
            graph = optimize_model(str(src), model_type="bert", num_heads=num_heads,
                                   hidden_size=hidden_size, opt_level=1)
            share_equal_initializers(graph.model)
            graph.save_model_to_file(str(dest))
    except Exception as e:  # noqa: BLE001 - any failure leaves the plain graph in place
        dest.unlink(missing_ok=True)
        raise ExportError(f"ONNX Runtime's optimizer failed: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:300] if str(e) else ''}") from None
    return {op: n for op, n in graph.get_fused_operator_statistics().items() if n}


def share_equal_initializers(model: Any) -> int:
    """Keep one of each set of equal initializers (same type, shape and bytes) of the ONNX
    ``model`` (a ``ModelProto``, changed in place), every use renamed to it. The fusion
    makes one merged Q·K·V weight per ``Attention`` node, so a layer applied several times
    (``--successor shared``) would carry its copy once per application (0.89 M numbers for
    the 3-layer MiniLM); the parity check after fusion covers the result. Returns how
    many initializers were dropped (0: the model is unchanged). Graphs with subgraphs
    (``If``, ``Loop``) are left as they are."""
    import hashlib

    from onnx import numpy_helper

    graph = model.graph
    if any(a.g.node or a.graphs for n in graph.node for a in n.attribute):
        return 0
    first: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    kept = []
    for init in graph.initializer:
        data = numpy_helper.to_array(init)
        key = (init.data_type, tuple(init.dims), hashlib.sha256(data.tobytes()).hexdigest())
        if key in first:
            rename[init.name] = first[key]
        else:
            first[key] = init.name
            kept.append(init)
    if not rename:
        return 0
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [i for i in graph.input if i.name not in rename]  # older IRs list them too
    del graph.input[:]
    graph.input.extend(inputs)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    return len(rename)


def quantize_int8(src: Path, dest: Path) -> dict[str, str]:
    """ONNX Runtime dynamic quantisation of the fp32 graph ``src`` into ``dest``: weights
    of MatMul/Gemm (and fused Attention) int8 per channel, activations quantised at run
    time, after ``quant_pre_process`` (shape inference and graph clean-up, as ONNX
    Runtime's quantisation guide asks; symbolic shape inference when it succeeds).

    Returns:
        ``{"quantization": ..., "pre_process": ...}``: what was applied, for the manifest.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # symbolic shape inference saves its partial model into the working directory when it
    # fails, and the quantiser writes helper files beside its output: do all of it in a
    # scratch directory, so only ``dest`` lands where the user's files are
    with _quiet(), tempfile.TemporaryDirectory() as scratch, _working_directory(scratch):
        staged, quantized = Path(scratch) / "pre_processed.onnx", Path(scratch) / "int8.onnx"
        try:
            quant_pre_process(str(src.resolve()), str(staged))
            pre = "quant_pre_process (symbolic shape inference)"
        except Exception:  # noqa: BLE001 - symbolic shape inference fails on some graphs
            quant_pre_process(str(src.resolve()), str(staged), skip_symbolic_shape=True)
            pre = "quant_pre_process (ONNX shape inference; symbolic failed)"
        graph = onnx.load(str(staged))
        staged.unlink()
        # the intermediate shapes the exporter recorded can disagree with ONNX's own shape
        # inference, which the quantiser runs strictly: let it infer them afresh
        del graph.graph.value_info[:]
        quantize_dynamic(graph, str(quantized), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        shutil.move(quantized, dest)
    return {"quantization": "onnxruntime dynamic, int8 weights per channel", "pre_process": pre}


@contextlib.contextmanager
def _working_directory(path: str):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def session(path: Path, threads: int | None = None, device: str = "cpu") -> Any:
    """An ONNX Runtime ``InferenceSession`` of ``path`` with ``threads`` intra-op threads
    (None: ONNX Runtime's default) on the CUDA provider when ``device`` is cuda and the
    provider exists, else the CPU one."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def run_session(sess: Any, batch: dict[str, Any]) -> Any:
    """Logits (batch, num_labels), numpy fp32, of one batch of tensors/arrays."""
    feeds = {i.name: _numpy(batch[i.name]) for i in sess.get_inputs()}
    return sess.run(["logits"], feeds)[0]


def _numpy(x: Any) -> Any:
    import numpy as np

    return x.cpu().numpy().astype(np.int64) if hasattr(x, "cpu") else np.asarray(x, dtype=np.int64)


def collect_logits(forward: Any, loader: Any) -> tuple[Any, Any]:
    """``(logits (N, num_labels), labels (N,))``, NumPy, of ``forward`` (a batch without
    labels -> NumPy logits (batch, num_labels)) over every batch of ``loader``; token-level
    batches (batch, L, num_labels) padded to the longest L (logits 0, labels -100)."""
    import numpy as np

    logits, labels = [], []
    for batch in loader:
        labels.append(batch["labels"].cpu().numpy())
        logits.append(np.asarray(forward({k: v for k, v in batch.items() if k != "labels"})))
    return concat_padded(logits, 0.0), concat_padded(labels, -100)


def predict_onnx(sess: Any, loader: Any) -> tuple[Any, Any]:
    """``(logits (N, num_labels), labels (N,))`` of ONNX session ``sess`` over ``loader``."""
    return collect_logits(lambda batch: run_session(sess, batch), loader)


def weights_mb(path: Path) -> float:
    """MB (10^6 bytes) of a model's weights on disk: a model directory's ``*.safetensors``
    files, or an ONNX file with the external-data files beside it (``model.onnx.data``)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.glob("*.safetensors")) / 1e6
    return sum(f.stat().st_size for f in path.parent.glob(path.name + "*")) / 1e6


def size_mb(path: Path) -> float:
    """Size on disk of a file or a directory tree, in MB (10^6 bytes)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
