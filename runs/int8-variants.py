"""Issue 31 follow-up: which ONNX Runtime dynamic-quantisation settings keep the MRPC
main job's successor within export's int8_max_drop (1 point)? Runs
``theseus export --format onnx,onnx-int8 --int8-max-drop 100 --force`` in WORKSPACE once
per variant, with ``theseus_cli.deploy.onnx.quantize_int8`` replaced by the variant, and
prints each variant's int8 dev score and its drop below fp32 ONNX.

    python runs/int8-variants.py ws/main-job-3          (log: runs/results/int8-variants.log)
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process

from theseus_cli.deploy import onnx as deploy

WS = Path(sys.argv[1]).resolve()
HEAD = ("/model/bert/pooler/dense/Gemm", "/model/classifier/Gemm")
VARIANTS = {
    "today: all MatMul/Gemm/Attention, per channel": {},
    "pooler and classifier left fp32": {"nodes_to_exclude": list(HEAD)},
    "fused Attention left fp32": {"op_types_to_quantize": ["MatMul", "Gemm"]},
    "reduce_range (7-bit weights)": {"reduce_range": True},
    "per tensor": {"per_channel": False},
}


def variant(options):
    def quantize(src, dest):
        with tempfile.TemporaryDirectory() as scratch:
            staged, out = Path(scratch) / "pre.onnx", Path(scratch) / "int8.onnx"
            quant_pre_process(str(src), str(staged), skip_symbolic_shape=True)
            graph = onnx.load(str(staged))
            del graph.graph.value_info[:]
            kw = {"weight_type": QuantType.QInt8, "per_channel": True,
                  "extra_options": {"DefaultTensorType": onnx.TensorProto.FLOAT}, **options}
            quantize_dynamic(graph, str(out), **kw)
            shutil.move(out, dest)
        return {"quantization": json.dumps(options), "pre_process": "quant_pre_process"}
    return quantize


from theseus_cli.cli.app import app  # noqa: E402

for name, options in VARIANTS.items():
    deploy.quantize_int8 = variant(options)
    try:
        app(["export", "-w", str(WS), "--format", "onnx,onnx-int8", "--int8-max-drop", "100",
             "--force"], standalone_mode=False)
    except SystemExit:
        pass
    newest = max((WS / "artifacts/MRPC/export").glob("v*"), key=lambda p: int(p.name[1:]))
    info = json.loads((newest / "manifest.json").read_text())["info"]
    fmts = info.get("formats", info)
    print(f"RESULT {name}: int8 {100 * fmts['onnx-int8']['score']:.2f}, fp32 "
          f"{100 * fmts['onnx']['score']:.2f}, drop {fmts['onnx-int8']['score_drop']:.2f}, "
          f"{fmts['onnx-int8']['mb']:.1f} MB ({newest.name})", flush=True)
