"""The whole pipeline through the ``theseus`` CLI on a tiny random BERT.

Real runs, no mocks: init -> replace (runs finetune-teacher first) ->
finetune-successor -> evaluate -> export -> status, then the version,
pinning, up-to-date and error behaviour of the stage commands.
"""

from __future__ import annotations

import json

import pytest
from conftest import cli, copy_workspace, flat, manifest, versions

from theseus_cli.store.artifacts import sha256_file

STAGES = ("finetune-teacher", "replace", "finetune-successor", "evaluate", "export")
INPUTS = {"finetune-teacher": [], "replace": ["finetune-teacher"],
          "finetune-successor": ["replace"], "evaluate": ["finetune-successor"],
          "export": ["evaluate"]}


# ------------------------------------------------------------ the pipeline
def test_replace_runs_finetune_teacher_first(trained):
    ws, out = trained
    text = flat(out["replace"])
    assert ("replace needs finetune-teacher for MRPC, which has no complete version: "
            "running finetune-teacher first") in text
    assert text.index("published MRPC/finetune-teacher/v1") < text.index("published MRPC/replace/v1")
    for stage in STAGES:
        assert versions(ws, stage) == ["v1"], stage
        assert f"published MRPC/{stage}/v1" in flat(" ".join(out.values()))
    # nothing half-written left behind
    assert not list((ws / "artifacts").rglob(".staging-*"))


@pytest.mark.parametrize("stage", STAGES)
def test_manifest_fields(trained, stage):
    ws, _ = trained
    m = manifest(ws, stage)
    assert (m["stage"], m["task"], m["version"], m["status"]) == (stage, "MRPC", "v1", "complete")
    assert m["schema"] == 2 and len(m["fingerprint"]) == 64
    # inputs: version + sha256 of that input's manifest.json
    assert sorted(m["inputs"]) == INPUTS[stage]
    for name, ref in m["inputs"].items():
        assert ref["version"] == "v1"
        path = ws / "artifacts" / "MRPC" / name / "v1" / "manifest.json"
        assert ref["manifest_sha256"] == sha256_file(path)
    # outputs: every file but the manifest, hashed
    art = ws / "artifacts" / "MRPC" / stage / "v1"
    files = {p.relative_to(art).as_posix() for p in art.rglob("*") if p.is_file()}
    assert set(m["outputs"]) == files - {"manifest.json", ".manifest.sha256"} and m["outputs"]
    assert (art / ".manifest.sha256").read_text().strip() == sha256_file(art / "manifest.json")
    for rel, meta in m["outputs"].items():
        assert meta["sha256"] == sha256_file(art / rel)
        assert meta["bytes"] == (art / rel).stat().st_size
    assert m["metrics"] and all(isinstance(v, (int, float)) for v in m["metrics"].values())
    t = m["timings"]
    assert t["seconds"] >= 0 and t["started_at"] <= t["finished_at"]
    lib = m["library_versions"]
    assert {"python", "torch", "transformers", "theseus-cli"} <= set(lib)
    assert lib["torch"] != "not installed"
    assert m["config"]["runtime"]["device"] == "cpu"
    assert m["config"]["data"]["glue_dir"]


def test_manifest_params_resolved(trained):
    ws, _ = trained
    teacher = manifest(ws, "finetune-teacher")["params"]
    assert teacher["epochs"] == 1 and teacher["batch_size"] == 8
    assert teacher["max_grad_norm"] == 1.0  # untouched default from the template
    rep = manifest(ws, "replace")
    p = rep["params"]
    assert p["scheduler"] == "linear" and p["successor"] == "first-n"
    assert p["schedulers"]["linear"] == {"b": 0.3, "k": None, "steps_to_one": 4,
                                         "fraction_to_one": None}
    assert rep["info"]["scheduler"]["name"] == "linear"
    assert rep["info"]["scheduler"]["params"] == {"b": 0.3, "k": None, "steps_to_one": 4,
                                                  "fraction_to_one": None}
    assert "min(1" in rep["info"]["scheduler"]["formula"]
    ev = manifest(ws, "evaluate")["params"]
    assert ev == {"eval_batch_size": 16, "speed_batches": 1, "speed_repeats": 1,
                  "predict_test": False, "successor": "finetune-successor", "modules": None}


def test_successor_has_half_the_layers(trained):
    from transformers import AutoConfig

    ws, _ = trained
    rep = manifest(ws, "replace")
    assert rep["info"]["predecessor_layers"] == 4 and rep["info"]["modules"] == 2
    assert rep["info"]["module_groups"] == [[0, 2], [2, 4]]
    for stage, layers in (("finetune-teacher", 4), ("replace", 2), ("finetune-successor", 2)):
        cfg = AutoConfig.from_pretrained(ws / "artifacts" / "MRPC" / stage / "v1" / "model")
        assert cfg.num_hidden_layers == layers, stage
    m = manifest(ws, "evaluate")["metrics"]
    assert (m["teacher_layers"], m["successor_layers"]) == (4, 2)
    assert m["successor_parameters"] < m["teacher_parameters"]
    assert {"teacher_f1", "successor_accuracy", "retention", "speedup"} <= set(m)
    report = json.loads((ws / "artifacts/MRPC/evaluate/v1/report.json").read_text())
    assert report["dev_examples"] == 20 and report["teacher"] == "v1"


def test_export_loads_with_stock_transformers(trained):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ws, _ = trained
    exported = ws / "artifacts/MRPC/export/v1/model"
    stock = AutoModelForSequenceClassification.from_pretrained(exported).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    inner = AutoModelForSequenceClassification.from_pretrained(
        ws / "artifacts/MRPC/finetune-successor/v1/model").eval()
    assert stock.config.num_hidden_layers == 2
    assert stock.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    batch = tokenizer(["the big cat sat on the mat .", "the old dog ran again ."],
                      ["the big cat sat on the mat .", "a red bird read the book ."],
                      padding=True, return_tensors="pt")
    with torch.inference_mode():
        a, b = stock(**batch).logits, inner(**batch).logits
    assert a.shape == (2, 2)
    assert torch.allclose(a, b, atol=1e-6)
    m = manifest(ws, "export")
    assert m["metrics"]["logits_max_abs_diff"] <= 1e-5
    assert m["info"]["successor_artifact"] == "v1" and m["info"]["layers"] == 2
    card = (exported / "README.md").read_text()
    assert "BERT-of-Theseus" in card and "| f1 |" in card and "| accuracy |" in card
    assert "Retention" in card and "2-layer successor of a 4-layer predecessor" in card
    assert "model/README.md" in m["outputs"]


def test_status(trained):
    ws, _ = trained
    text = cli("status", "--workspace", ws).output
    for stage in STAGES:
        line = next(line for line in text.splitlines() if f" {stage} " in line)
        assert " MRPC " in line and " v1 " in line and " 1 " in line, line
    assert "retention" in text and "score" in text


# ------------------------------------------------------ workspace discovery
def test_workspace_option_from_other_cwd_and_discovery(trained, tmp_path, monkeypatch):
    ws, _ = trained
    monkeypatch.chdir(tmp_path)
    assert "finetune-successor" in cli("status", "--workspace", ws).output
    tables = versions(ws, "glue-table", "GLUE")
    out = flat(cli("evaluate", "-w", ws).output)
    assert "MRPC/evaluate/v1 is up to date" in out and "GLUE/glue-table/v1 is up to date" in out
    assert versions(ws, "glue-table", "GLUE") == tables  # nothing new: no new table either
    sub = tmp_path / "copy"
    copy_workspace(ws, sub)
    (sub / "notes" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(sub / "notes" / "deeper")
    result = cli("status")
    assert str(sub) in result.output.replace("\n", "") and " export " in result.output
    out = flat(cli("export").output)  # discovered from two levels down
    assert "MRPC/export/v1 is up to date" in out
    assert versions(sub, "export") == ["v1"]
    # no workspace anywhere above
    monkeypatch.chdir(tmp_path)
    bad = cli("status", ok=False)
    assert bad.exit_code == 2 and "no theseus workspace here" in flat(bad.output)
    bad = cli("status", "--workspace", tmp_path / "nowhere", ok=False)
    assert bad.exit_code == 2 and "no theseus.yaml there" in flat(bad.output)


def test_no_upstream_on_empty_workspace(workspace):
    result = cli("finetune-successor", "--no-upstream", "-w", workspace, ok=False)
    assert result.exit_code != 0
    text = flat(result.output)
    assert "finetune-successor needs a complete replace artifact for MRPC and none exists" in text
    assert "Traceback" not in result.output
    assert not list(workspace.glob("artifacts/*/*/v*"))
    assert not list(workspace.glob("artifacts/*/*/.staging-*"))
    assert versions(workspace, "replace") == versions(workspace, "finetune-successor") == []


# ------------------------------------------------- versions, pins, force
def test_up_to_date_force_and_pins(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    out = flat(cli("evaluate", "-w", ws).output)
    assert "MRPC/evaluate/v1 is up to date (same params and inputs); use --force" in out
    assert versions(ws, "evaluate") == ["v1"]
    assert "published MRPC/evaluate/v2" in flat(cli("evaluate", "--force", "-w", ws).output)
    assert versions(ws, "evaluate") == ["v1", "v2"]
    assert manifest(ws, "evaluate", "v2")["inputs"] == manifest(ws, "evaluate", "v1")["inputs"]

    # a new replace version; the successor pinned to the old one is still up to date
    assert "published MRPC/replace/v2" in flat(cli("replace", "--force", "-w", ws).output)
    out = flat(cli("finetune-successor", "--from", "v1", "-w", ws).output)
    assert "finetune-successor/v1 is up to date" in out
    out = flat(cli("finetune-successor", "--from", "replace=v1", "-w", ws).output)
    assert "up to date" in out
    assert versions(ws, "finetune-successor") == ["v1"]
    # unpinned: the latest replace (v2) is used -> a new version
    assert "published MRPC/finetune-successor/v2" in flat(
        cli("finetune-successor", "-w", ws).output)
    assert manifest(ws, "finetune-successor", "v2")["inputs"]["replace"]["version"] == "v2"
    # any earlier version with the same fingerprint is reused, not only the latest
    out = flat(cli("finetune-successor", "--from", "replace=v1", "-w", ws).output)
    assert "MRPC/finetune-successor/v1 is up to date" in out
    assert versions(ws, "finetune-successor") == ["v1", "v2"]
    # pinning a version that does not exist lists the existing ones
    bad = cli("finetune-successor", "--from", "v9", "-w", ws, ok=False)
    assert bad.exit_code == 1
    assert "MRPC/replace has no complete version v9; existing: v1, v2" in flat(bad.output)
    bad = cli("finetune-successor", "--from", "evaluate=v1", "-w", ws, ok=False)
    assert "does not read evaluate; its inputs: replace" in flat(bad.output)
    bad = cli("finetune-successor", "--from", "vx", "-w", ws, ok=False)
    assert "invalid version 'vx'" in flat(bad.output)
    bad = cli("finetune-teacher", "--from", "v1", "-w", ws, ok=False)
    assert "reads no input artifacts" in flat(bad.output)
    assert versions(ws, "finetune-successor") == ["v1", "v2"]


# ---------------------------------------------------------- scheduler options
def test_unknown_scheduler_lists_available(trained):
    ws, _ = trained
    bad = cli("replace", "--scheduler", "nope", "-w", ws, ok=False)
    assert bad.exit_code == 2
    assert "unknown scheduler 'nope'; available: anti-curriculum, constant, linear" in flat(bad.output)
    assert "Traceback" not in bad.output
    assert versions(ws, "replace") == ["v1"]


@pytest.mark.parametrize("args,message", [
    (["--scheduler-arg", "b=2"], "schedulers.linear.b: 2.0 is above the maximum 1.0"),
    (["--scheduler-arg", "b=high"], "schedulers.linear.b: expected float, got 'high'"),
    (["--scheduler-arg", "zz=1"], "unknown key 'zz'; accepted: b, fraction_to_one, k, steps_to_one"),
    (["--scheduler-arg", "b"], "--scheduler-arg: expected KEY=VALUE, got 'b'"),
    (["--scheduler", "constant", "--scheduler-arg", "p=1.5"], "schedulers.constant.p: 1.5 is above"),
    (["--successor", "nope"], "unknown successor builder 'nope'; available: compose, every-other, first-n"),
])
def test_bad_scheduler_args(trained, args, message):
    ws, _ = trained
    bad = cli("replace", *args, "-w", ws, ok=False)
    assert bad.exit_code == 2, bad.output
    assert message in flat(bad.output)
    assert "Traceback" not in bad.output
    assert versions(ws, "replace") == ["v1"]


def test_constant_scheduler_arg_recorded(trained, tmp_path):
    ws = copy_workspace(trained[0], tmp_path / "ws")
    out = flat(cli("replace", "--scheduler", "constant", "--scheduler-arg", "p=0.7",
                   "-w", ws).output)
    assert "published MRPC/replace/v2" in out and "p = 0.7" in out
    m = manifest(ws, "replace", "v2")
    assert m["params"]["scheduler"] == "constant"
    assert m["params"]["schedulers"]["constant"]["p"] == 0.7
    assert m["params"]["schedulers"]["linear"]["steps_to_one"] == 4  # the others untouched
    assert m["info"]["scheduler"] == {"name": "constant",
                                      "params": {"p": 0.7, "replacing_steps": None},
                                      "formula": "p = 0.7"}
    assert m["inputs"]["finetune-teacher"]["version"] == "v1"  # the teacher is reused
    assert versions(ws, "finetune-teacher") == ["v1"]
    # every replacing step logged p = 0.7
    log = [json.loads(line) for line in
           (ws / "artifacts/MRPC/replace/v2/metrics.jsonl").read_text().splitlines()]
    train = [r for r in log if r["event"] == "train"]
    assert len(train) == 6 and {r["p"] for r in train} == {0.7}


def test_plugins_lists_builtins():
    text = cli("plugins").output
    rows = [line for line in text.splitlines() if line.startswith("│")]
    kinds = [line.split("│")[1].strip() for line in rows]
    assert kinds.count("stage") == 12  # glue-table too (run by evaluate, no command)
    assert kinds.count("scheduler") == 3
    assert kinds.count("successor builder") == 8
    assert kinds.count("model family") == 10
    assert kinds.count("task kind") == 3
    for name in (*STAGES, "truncate", "distill", "pkd", "layerdrop", "trim-vocab", "shared", "compose",
                 "constant", "linear", "anti-curriculum",
                 "first-n", "every-other", "narrow-ffn", "low-rank", "head-pruned", "narrow-hidden",
                 "glue-table", "bert", "roberta", "electra", "mpnet", "sequence-classification",
                 "regression", "token-classification",
                 "distilbert", "deberta-v2", "albert", "modernbert", "llama", "gpt2"):
        assert f" {name} " in text
    assert "broken" not in text


# ---------------------------------------------------- other task types
def test_stsb_regression_end_to_end(workspace):
    from transformers import AutoConfig

    out = flat(cli("export", "--task", "STS-B", "-w", workspace).output)
    for stage in STAGES:
        assert f"published STS-B/{stage}/v1" in out
        assert versions(workspace, stage, task="STS-B") == ["v1"]
    assert versions(workspace, "finetune-teacher") == []  # the workspace's MRPC untouched
    m = manifest(workspace, "finetune-teacher", task="STS-B")
    assert {"pearson", "spearmanr", "score"} <= set(m["metrics"])
    assert m["info"]["train_examples"] == 48 and m["info"]["dev_examples"] == 20
    cfg = AutoConfig.from_pretrained(workspace / "artifacts/STS-B/export/v1/model")
    assert cfg.num_labels == 1 and cfg.problem_type == "regression"
    assert cfg.num_hidden_layers == 2
    ev = manifest(workspace, "evaluate", task="STS-B")["metrics"]
    assert {"teacher_pearson", "successor_spearmanr"} <= set(ev)
    assert "STS-B" in cli("status", "-w", workspace).output


def test_rte_string_labels(workspace):
    from transformers import AutoConfig

    out = flat(cli("finetune-teacher", "--task", "rte", "-w", workspace).output)
    assert "published RTE/finetune-teacher/v1" in out
    m = manifest(workspace, "finetune-teacher", task="RTE")
    assert set(m["metrics"]) >= {"accuracy", "score"} and "f1" not in m["metrics"]
    assert 0.0 <= m["metrics"]["accuracy"] <= 1.0
    cfg = AutoConfig.from_pretrained(workspace / "artifacts/RTE/finetune-teacher/v1/model")
    assert cfg.id2label == {0: "entailment", 1: "not_entailment"}
    bad = cli("finetune-teacher", "--task", "nope", "-w", workspace, ok=False)
    assert bad.exit_code == 2 and "unknown task 'nope'; available:" in flat(bad.output)
    assert "MRPC" in bad.output and "STS-B" in bad.output
