"""``export --format hf,onnx,onnx-int8``: the graphs run in ONNX Runtime, parity is
checked and recorded, a failed check publishes nothing, the model card says it all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from badinputs import expect
from conftest import cli, copy_workspace, flat, manifest, versions
from tiny_models import MODEL_TYPES, batch, tiny_model

from theseus_builtin.stages.export_onnx import attention_shape

ALL = ["--format", "hf,onnx,onnx-int8", "--int8-max-drop", "100"]  # tiny random models: any drop


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """A copy of the trained workspace with every format exported (export/v2)."""
    ws = copy_workspace(trained[0], tmp_path_factory.mktemp("formats") / "ws")
    out = cli("export", "-w", ws, *ALL).output
    return ws, out


def test_onnx_and_int8_round_trip_with_parity_in_the_manifest(exported):
    import onnxruntime as ort
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ws, out = exported
    art = ws / "artifacts/MRPC/export/v2"
    m = manifest(ws, "export", "v2")
    assert set(m["info"]["formats"]) == {"hf", "onnx", "onnx-int8"}
    assert 0 <= m["metrics"]["onnx_logits_max_abs_diff"] <= 1e-4
    assert m["metrics"]["logits_max_abs_diff"] <= 1e-5
    for key in ("pytorch_score", "onnx_score", "onnx_int8_score", "int8_score_drop",
                "onnx_mb", "onnx_int8_mb", "hf_mb"):
        assert np.isfinite(m["metrics"][key]), key
    assert m["metrics"]["onnx_int8_mb"] < m["metrics"]["onnx_mb"]  # int8 weights
    onnx = m["info"]["formats"]["onnx"]
    assert onnx["exporter"] == "torchscript" and onnx["fallback_reason"] is None
    # fused for ONNX Runtime, parity held after fusion (above), recorded as applied
    assert {"Attention", "SkipLayerNormalization"} <= set(onnx["optimization"]["fused"])
    assert m["info"]["formats"]["onnx-int8"]["pre_process"].startswith("quant_pre_process")
    assert {"onnx/model.onnx", "onnx-int8/model.onnx", "onnx/tokenizer.json"} <= set(m["outputs"])
    assert "onnx-int8" in flat(out) and "exported:" in flat(out)
    # a user's round trip: tokenizer from the folder, ONNX Runtime, a shape never traced
    tok = AutoTokenizer.from_pretrained(art / "onnx")
    enc = tok(["the big cat sat on the mat .", "a dog"], ["the cat sat .", "a red bird ran ."],
              padding=True, return_tensors="np")
    ref_model = AutoModelForSequenceClassification.from_pretrained(art / "model").eval()
    with torch.inference_mode():
        ref = ref_model(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
    for fmt, atol in (("onnx", 1e-4), ("onnx-int8", None)):
        sess = ort.InferenceSession(str(art / fmt / "model.onnx"))
        got = sess.run(["logits"], {i.name: enc[i.name] for i in sess.get_inputs()})[0]
        assert got.shape == ref.shape == (2, 2) and np.isfinite(got).all()
        if atol:
            np.testing.assert_allclose(got, ref, atol=atol, rtol=0)


def test_model_card_has_model_index_recipe_and_loading(exported):
    ws, _ = exported
    card = (ws / "artifacts/MRPC/export/v2/README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] and front["library_name"] == "transformers"
    result = front["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "validation" and result["dataset"]["config"] == "mrpc"
    assert {x["type"] for x in result["metrics"]} == {"accuracy", "f1"}
    for text in ("## Recipe", "`replace`", "`finetune-successor`", "`finetune-teacher`",
                 "seed 42", "onnx-int8/model.onnx", "InferenceSession", "from_pretrained",
                 "Retention", "| `onnx` |", "## Speed", "| teacher | pytorch fp32 |",
                 "| successor | onnx-int8 |", "b32×s128", "fused for ONNX Runtime (Attention"):
        assert text in card, text
    for fmt in ("model", "onnx", "onnx-int8"):  # each folder carries the card
        assert (ws / "artifacts/MRPC/export/v2" / fmt / "README.md").read_text() == card
    # each file's size against the teacher's fp32 weights file (evaluate's number)
    m, ev = manifest(ws, "export", "v2"), manifest(ws, "evaluate", "v1")
    smaller = ev["metrics"]["teacher_weights_mb"] / m["metrics"]["onnx_int8_mb"]
    assert f"| {m['metrics']['onnx_int8_mb']:.1f} | {smaller:.1f}× |" in card


def test_teacher_exports_too(exported, tmp_path):
    ws = copy_workspace(exported[0], tmp_path / "ws")
    cli("export", "-w", ws, "--successor", "finetune-teacher", "--format", "onnx")
    m = manifest(ws, "export", versions(ws, "export")[-1])
    assert m["info"]["model_artifact"] == "MRPC/finetune-teacher/v1"
    assert set(m["info"]["formats"]) == {"onnx"} and m["metrics"]["onnx_logits_max_abs_diff"] <= 1e-4
    assert "fine-tuned predecessor" in (ws / "artifacts/MRPC/export" / versions(ws, "export")[-1]
                                        / "README.md").read_text()
    # the method tables show each exported model's files (issue 32): the next evaluate
    # reuses the evaluations and makes the tables again, the exports among their inputs
    teacher_mb = m["metrics"]["onnx_mb"]
    successor = manifest(ws, "export", "v2")["metrics"]
    cli("evaluate", "-w", ws)
    table = ws / "artifacts/GLUE/glue-table" / versions(ws, "glue-table", "GLUE")[-1]
    inputs = json.loads((table / "manifest.json").read_text())["inputs"]
    assert {"MRPC/export/v2", f"MRPC/export/{versions(ws, 'export')[-1]}"} <= set(inputs)
    rows = json.loads((table / "tables.json").read_text())["MRPC"]
    assert rows[0]["onnx_mb"] == teacher_mb and rows[0]["int8_mb"] is None
    assert rows[1]["int8_mb"] == successor["onnx_int8_mb"] < successor["onnx_mb"]
    assert rows[1]["onnx_mb"] == successor["onnx_mb"]
    assert f"| {successor['onnx_int8_mb']:.1f} |" in (table / "tables.md").read_text()
    glue = (table / "glue_table.md").read_text()
    assert "| Params | emb | fp32 MB | int8 MB |" in glue
    assert f"{successor['onnx_int8_mb']:.1f}" in glue


def test_failed_parity_publishes_nothing(exported, tmp_path, monkeypatch):
    from theseus_cli.deploy import onnx as deploy

    ws = copy_workspace(exported[0], tmp_path / "ws")
    before = versions(ws, "export")
    real = deploy.predict_onnx
    monkeypatch.setattr(deploy, "predict_onnx", lambda s, loader: (real(s, loader)[0] + 1e-3, None))
    bad = cli("export", "-w", ws, "--format", "onnx", ok=False)
    expect(bad, 1, "fp32 ONNX: the torchscript graph's logits differ from PyTorch by 0.001",
           "the dynamo graph's logits differ", "nothing was published")
    tag_sessions(monkeypatch)

    def nan_for_int8(s, loader):
        logits, labels = real(s, loader)
        return (logits * np.nan if "onnx-int8" in s.theseus_path else logits), labels

    monkeypatch.setattr(deploy, "predict_onnx", nan_for_int8)
    bad = cli("export", "-w", ws, "--format", "onnx,onnx-int8", ok=False)
    expect(bad, 1, "int8 ONNX dev score nan", "predictions are not finite",
           "nothing was published", "--format hf,onnx")
    assert versions(ws, "export") == before


def _int8_logits(monkeypatch, change):
    """int8 sessions return ``change(logits, labels)`` (fp32 sessions their own logits)."""
    from theseus_cli.deploy import onnx as deploy

    real = deploy.predict_onnx
    tag_sessions(monkeypatch)

    def predict(s, loader):
        logits, labels = real(s, loader)
        return (change(logits.copy(), labels) if "onnx-int8" in s.theseus_path else logits,
                labels)

    monkeypatch.setattr(deploy, "predict_onnx", predict)


def test_an_int8_drop_within_the_dev_sets_noise_is_exported_with_a_warning(
        exported, tmp_path, monkeypatch):
    ws = copy_workspace(exported[0], tmp_path / "ws")

    def one_right_made_wrong(logits, labels):  # of 20 dev pairs: a drop of several points
        i = int(np.flatnonzero(logits.argmax(-1) == labels)[0])
        logits[i] = logits[i, ::-1]
        return logits

    _int8_logits(monkeypatch, one_right_made_wrong)
    out = flat(cli("export", "-w", ws, "--format", "onnx,onnx-int8", "--int8-max-drop",
                   "1").output)
    assert "warning: the int8 ONNX dev score is" in out and "within the dev set's noise" in out
    int8 = manifest(ws, "export", versions(ws, "export")[-1])["info"]["formats"]["onnx-int8"]
    low, high = int8["drop_interval"]
    assert int8["score_drop"] > 1 and low <= 0 < high and "noise" in int8["parity"]


def test_an_int8_drop_beyond_the_noise_publishes_nothing(exported, tmp_path, monkeypatch):
    ws = copy_workspace(exported[0], tmp_path / "ws")
    before = versions(ws, "export")

    def every_one_wrong(logits, labels):
        wrong = np.zeros_like(logits)
        wrong[np.arange(len(labels)), 1 - labels] = 1.0
        return wrong

    _int8_logits(monkeypatch, every_one_wrong)
    bad = cli("export", "-w", ws, "--format", "onnx,onnx-int8", ok=False)
    expect(bad, 1, "points below fp32 ONNX", "int8_max_drop 1", "beyond the dev set's noise",
           "paired bootstrap 95% interval", "nothing was published", "--int8-max-drop")
    assert versions(ws, "export") == before


def test_the_drop_interval_is_paired_seeded_and_reaches_zero_only_for_noise():
    from theseus_cli.data.metrics import score_drop_interval

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    fp32 = np.eye(2)[np.where(rng.random(200) < 0.8, labels, 1 - labels)]  # 80% right
    right, wrong = (np.flatnonzero(fp32.argmax(-1) == labels),
                    np.flatnonzero(fp32.argmax(-1) != labels))
    swapped = fp32.copy()  # 6 right made wrong, 5 wrong made right: noise
    swapped[right[:6]] = swapped[right[:6], ::-1]
    swapped[wrong[:5]] = swapped[wrong[:5], ::-1]
    low, high = score_drop_interval("MRPC", fp32, swapped, labels, resamples=300)
    assert low < 0 < high
    assert (low, high) == score_drop_interval("MRPC", fp32, swapped, labels, resamples=300)
    broken = fp32.copy()  # 40 right made wrong, none the other way
    broken[right[:40]] = broken[right[:40], ::-1]
    assert score_drop_interval("MRPC", fp32, broken, labels, resamples=300)[0] > 0.05


def tag_sessions(monkeypatch):
    """Every ONNX Runtime session the export makes knows its graph's path (theseus_path)."""
    from theseus_cli.deploy import onnx as deploy

    real = deploy.session

    def session(path, *args, **kwargs):
        sess = real(path, *args, **kwargs)
        sess.theseus_path = str(path)
        return sess

    monkeypatch.setattr(deploy, "session", session)


@pytest.mark.parametrize("value,phrases", [
    ("tflite", ["'tflite'", "accepted: hf, onnx, onnx-int8"]),
    ("onnx-int8", ["onnx-int8 is checked against the fp32 graph", "add onnx"]),
    (",", ["nothing", "accepted: hf, onnx, onnx-int8"])])
def test_bad_formats_are_named_before_any_work(exported, value, phrases):
    ws = exported[0]
    before = versions(ws, "export")
    bad = cli("export", "-w", ws, "--format", value, ok=False)
    expect(bad, 2, "--format", *phrases)
    assert versions(ws, "export") == before


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_family_exports_to_onnx_with_parity(model_type, tmp_path):
    from theseus_cli.deploy import onnx as deploy

    model = tiny_model(model_type).eval()
    names = ["input_ids", "attention_mask"]
    how = deploy.export_onnx(model, batch(0, 2, 16), names, tmp_path / "m.onnx")
    other = batch(1, 3, 9)  # another batch size and length, padding in the first row
    other["attention_mask"][0, 5:] = 0
    with torch.inference_mode():
        ref = model(**{k: other[k] for k in names}).logits.numpy()
    got = deploy.run_session(deploy.session(tmp_path / "m.onnx"), other)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    assert how == {"exporter": "torchscript", "opset": deploy.TORCHSCRIPT_OPSET}
    json.dumps(how)  # recorded in the manifest as is
    # ONNX Runtime's fusion (attention where the family's pattern allows) keeps parity
    fused = deploy.optimize_graph(tmp_path / "m.onnx", tmp_path / "f.onnx",
                                  *attention_shape(model))
    assert any("LayerNormalization" in op for op in fused)
    if model_type in ("bert", "roberta", "electra", "distilbert"):
        assert fused["Attention"] == 4
    got = deploy.run_session(deploy.session(tmp_path / "f.onnx"), other)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_fusion_is_skipped_when_off_or_when_it_breaks_parity(exported, tmp_path, monkeypatch):
    """--no-onnx-fuse keeps standard ONNX operators; a fused graph that fails parity
    is dropped for the plain one, with the reason in the manifest."""
    import onnx

    from theseus_cli.deploy import onnx as deploy

    ws = copy_workspace(exported[0], tmp_path / "ws")
    cli("export", "-w", ws, "--format", "onnx", "--no-onnx-fuse")
    v = versions(ws, "export")[-1]
    assert manifest(ws, "export", v)["info"]["formats"]["onnx"]["optimization"] is None
    graph = onnx.load(str(ws / "artifacts/MRPC/export" / v / "onnx/model.onnx"))
    assert {n.domain for n in graph.graph.node} <= {"", "ai.onnx"}
    real = deploy.predict_onnx
    tag_sessions(monkeypatch)
    monkeypatch.setattr(deploy, "predict_onnx", lambda s, loader: (
        real(s, loader)[0] + (1e-3 if s.theseus_path.endswith("fused.onnx") else 0), None))
    out = cli("export", "-w", ws, "--format", "onnx", "--force").output
    assert "the fused graph's logits differ from PyTorch by 0.001" in flat(out)
    onnx_info = manifest(ws, "export", versions(ws, "export")[-1])["info"]["formats"]["onnx"]
    assert "fused graph's logits differ" in onnx_info["optimization"]["skipped"]
    assert onnx_info["max_abs_diff"] <= 1e-4


QUICK = ["--batch-sizes", "1,2", "--seq-lengths", "8", "--dev-batches", "1", "--min-seconds",
         "0", "--min-iters", "2", "--warmup", "1"]


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_benchmark_measures_every_model_and_format_in_one_run(exported, tmp_path, isolate):
    ws = copy_workspace(exported[0], tmp_path / "ws")
    cli("export", "-w", ws, "--successor", "finetune-teacher", "--format", "onnx")
    cli("evaluate", "-w", ws, "--successor", "truncate")  # a baseline nobody exported
    rounds = "2" if isolate == "--no-isolate" else "1"  # interleaved rounds: cheap in-process
    out = cli("benchmark", "-w", ws, *QUICK, isolate, "--rounds", rounds).output
    art = ws / "artifacts/MRPC/benchmark/v1"
    report = json.loads((art / "benchmark.json").read_text())
    assert set(report["machine"]) >= {"cpu", "threads", "device", "torch", "onnxruntime"}
    assert report["shapes"] == ["b1×s8", "b2×s8", "dev"]
    got = [(r["artifact"].split("/")[1], r["format"]) for r in report["rows"]]
    assert got == [("finetune-teacher", "pytorch fp32"), ("truncate", "pytorch fp32"),
                   ("finetune-successor", "pytorch fp32"), ("finetune-successor", "onnx"),
                   ("finetune-successor", "onnx-int8"), ("finetune-teacher", "onnx")]
    for r in report["rows"]:
        for shape, m in r["shapes"].items():
            assert 0 < m["p50_ms"] <= m["p90_ms"] and m["throughput"] > 0 and m["calls"] >= 2
            assert len(m["round_p50_ms"]) == int(rounds) and m["spread_pct"] >= 0
            assert min(m["round_p50_ms"]) <= m["p50_ms"] <= max(m["round_p50_ms"])
            assert r["speedup"][shape] > 0
        assert (r["peak_mb"] is not None) == (isolate == "--isolate")
        assert r["score"] is not None and 0 <= r["score"] <= 1
    assert report["rows"][0]["speedup"]["dev"] == 1.0  # the PyTorch teacher is the base
    assert report["rows"][0]["smaller"] == 1.0 and all(r["file_mb"] > 0 for r in report["rows"])
    size = {(r["artifact"].split("/")[1], r["format"]): r["file_mb"] for r in report["rows"]}
    assert size[("finetune-successor", "onnx-int8")] < size[("finetune-successor", "onnx")]
    if isolate == "--isolate":  # each process holds its own runtime only (no torch for ONNX)
        peak = {(r["artifact"].split("/")[1], r["format"]): r["peak_mb"] for r in report["rows"]}
        assert peak[("finetune-successor", "onnx-int8")] < peak[("finetune-teacher", "pytorch fp32")]
    md = (art / "benchmark.md").read_text()
    assert "p50 latency" in md and "Throughput" in md and "finetune-successor/v1" in md
    assert (art / "chart_MRPC.png").stat().st_size > 1000
    m = manifest(ws, "benchmark")
    assert m["info"]["charts"] == ["chart_MRPC.png"]
    assert "MRPC/finetune-successor/v1:onnx-int8:dev:speedup" in m["metrics"]
    assert "p50 latency per call" in flat(out) and "b2×s8" in out


def test_benchmark_rejects_bad_shapes_before_any_work(exported):
    ws = exported[0]
    bad = cli("benchmark", "-w", ws, "--batch-sizes", "1,x", ok=False)
    expect(bad, 2, "--batch-sizes 1,x", "comma-separated positive integers")
    bad = cli("benchmark", "-w", ws, "--exports", "newest", ok=False)
    expect(bad, 2, "--exports newest", "accepted: latest")
    assert versions(ws, "benchmark") == []


def test_int8_of_a_dynamo_graph_leaves_the_working_directory_clean(tmp_path, monkeypatch):
    """Symbolic shape inference fails on the dynamo graph and then saves a partial model
    into the working directory; quantisation runs it in a scratch one instead."""
    from theseus_cli.deploy import onnx as deploy

    model = tiny_model("bert").eval()
    names = ["input_ids", "attention_mask"]
    deploy.export_onnx(model, batch(0, 2, 16), names, tmp_path / "m.onnx", "dynamo")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    how = deploy.quantize_int8(tmp_path / "m.onnx", tmp_path / "q.onnx")
    assert how["pre_process"] == "quant_pre_process (ONNX shape inference; symbolic failed)"
    assert list(cwd.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "cwd", "m.onnx", "q.onnx"]
    got = deploy.run_session(deploy.session(tmp_path / "q.onnx"), batch(1, 3, 9))
    assert got.shape == (3, 2) and np.isfinite(got).all()
