"""Several tasks in one workspace, `evaluate --glue-all` and the leaderboard files."""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, _write, cli, flat, pairs, set_yaml, write_glue

from theseus_cli.data.glue import TRAINABLE_TASKS, get_task
from theseus_cli.data.submission import answered_test_splits, prediction_strings

NLI = ("entailment", "neutral", "contradiction")
TEST_ROWS = {"MRPC.tsv": 10, "RTE.tsv": 10, "MNLI-m.tsv": 7, "MNLI-mm.tsv": 9, "AX.tsv": 5}


def write_mnli(root: Path, seed: int = 1) -> None:
    """MNLI and the diagnostic set in the GLUE layout (train 12 columns, dev 16, test 10)."""
    rng = random.Random(seed)
    parse = "s1b\ts2b\ts1p\ts2p"
    head = f"index\tpromptID\tpairID\tgenre\t{parse}\tsentence1\tsentence2"
    rows = [head + "\tlabel1\tgold_label"]
    rows += [f"{i}\t{i}\t{i}e\tfiction\t{parse}\t{a}\t{b}\t{NLI[y]}\t{NLI[y]}"
             for i, (a, b, y) in enumerate(pairs(rng, 40))]
    _write(root / "MNLI" / "train.tsv", rows)
    for split, n in (("dev_matched", 12), ("dev_mismatched", 11)):
        rows = [head + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"]
        rows += [f"{i}\t{i}\t{i}e\tfiction\t{parse}\t{a}\t{b}" + f"\t{NLI[2 * (1 - y)]}" * 6
                 for i, (a, b, y) in enumerate(pairs(rng, n))]
        _write(root / "MNLI" / f"{split}.tsv", rows)
    for split in ("test_matched", "test_mismatched"):
        n = TEST_ROWS["MNLI-m.tsv" if split == "test_matched" else "MNLI-mm.tsv"]
        rows = [head] + [f"{i}\t{i}\t{i}e\tfiction\t{parse}\t{a}\t{b}"
                         for i, (a, b, _) in enumerate(pairs(rng, n))]
        _write(root / "MNLI" / f"{split}.tsv", rows)
    rows = ["index\tsentence1\tsentence2"]
    rows += [f"{i}\t{a}\t{b}" for i, (a, b, _) in enumerate(pairs(rng, TEST_ROWS["AX.tsv"]))]
    _write(root / "diagnostic" / "diagnostic.tsv", rows)


def test_leaderboard_strings_and_files():
    rte, stsb, mnli = get_task("RTE"), get_task("STS-B"), get_task("MNLI")
    assert prediction_strings(rte, np.array([[2.0, 1.0], [0.0, 3.0]])) == [
        "entailment", "not_entailment"]
    assert prediction_strings(get_task("CoLA"), np.array([[0.0, 1.0]])) == ["1"]
    assert prediction_strings(stsb, np.array([[-0.4], [2.5], [7.0]])) == ["0.000", "2.500", "5.000"]
    assert [(t.name, s, t.submission_file(s)) for t, s in answered_test_splits(mnli)] == [
        ("MNLI", "test_matched", "MNLI-m.tsv"), ("MNLI", "test_mismatched", "MNLI-mm.tsv"),
        ("AX", "test", "AX.tsv")]
    names = {get_task(t).submission_file(s) for t in (*TRAINABLE_TASKS, "AX")
             for s in get_task(t).test_splits}
    assert names == {"CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv",
                     "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"}


def test_init_glue_all_covers_every_task(tmp_path):
    cli("init", tmp_path / "ws", "--glue-all")
    text = (tmp_path / "ws" / "theseus.yaml").read_text()
    assert "task: [CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI]" in text


@pytest.fixture(scope="module")
def multi(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("multi")
    glue = write_glue(root / "glue")
    write_mnli(glue)
    ws = root / "ws"
    cli("init", ws, "--model", tiny_model_dir, "--glue-dir", glue,
        "--task", "MRPC", "--task", "RTE", "--task", "MNLI")
    set_yaml(ws, FAST)
    outputs = {"replace": cli("replace", "-w", ws).output,  # all three tasks, teacher first
               "finetune-successor": cli("finetune-successor", "-w", ws).output}
    return ws, outputs


def test_commands_without_task_run_every_workspace_task(multi):
    ws, outputs = multi
    for task in ("MRPC", "RTE", "MNLI"):
        assert (ws / "artifacts" / task / "finetune-successor" / "v1" / "manifest.json").is_file()
    assert "replace needs finetune-teacher for MNLI" in flat(outputs["replace"])


def test_evaluate_glue_all_table_and_submission(multi):
    ws, _ = multi
    result = cli("evaluate", "--glue-all", "--predict-test", "-w", ws)
    out = flat(result.output)
    for task in ("CoLA", "SST-2", "STS-B", "QQP", "QNLI", "WNLI"):
        assert f"missing {task}: no trained successor" in out
    art = ws / "artifacts" / "GLUE" / "glue-table" / "v1"
    table = json.loads((art / "glue_table.json").read_text())
    assert [r["model"].split(" ")[0] for r in table["rows"]] == ["teacher", "theseus", "majority"]
    for row in table["rows"]:
        assert row["macro"] is None  # 3 of 8 paper tasks: never a made-up macro score
        assert all(row["scores"][t] is not None for t in ("MRPC", "RTE", "MNLI"))
        assert all(row["scores"][t] is None for t in ("CoLA", "QQP", "STS-B", "WNLI"))
        assert sorted(row["retention_over"]) == ["MNLI", "MRPC", "RTE"]
    # MNLI's dev number is the mean of matched and mismatched accuracy (section 4.1)
    mnli = json.loads((ws / "artifacts/MNLI/evaluate/v1/manifest.json").read_text())["metrics"]
    assert mnli["successor_score"] == pytest.approx(
        (mnli["successor_accuracy_matched"] + mnli["successor_accuracy_mismatched"]) / 2)
    md = (art / "glue_table.md").read_text()
    assert ("| model | Params | emb | fp32 MB | int8 MB | CoLA | MNLI | MRPC | QNLI | QQP | "
            "RTE | SST-2 | STS-B | Macro |") in md
    # the paper's # Param column: the first task's count (tasks differ by the classifier)
    for row in table["rows"][:2]:
        assert row["params"].endswith("M") and row["int8_mb"] == "—"  # nothing exported
    assert table["rows"][2]["params"] == "—"  # the majority class has no model
    assert "- QQP: no trained successor" in md
    with zipfile.ZipFile(art / "glue_submission.zip") as z:
        assert sorted(z.namelist()) == sorted(TEST_ROWS)
        for name, n in TEST_ROWS.items():
            lines = z.read(name).decode().splitlines()
            assert lines[0] == "index\tprediction" and len(lines) == n + 1
            labels = {line.split("\t")[1] for line in lines[1:]}
            allowed = {"0", "1"} if name == "MRPC.tsv" else (
                {"entailment", "not_entailment"} if name == "RTE.tsv" else set(NLI))
            assert labels <= allowed
            assert [int(line.split("\t")[0]) for line in lines[1:]] == list(range(n))
    sub = json.loads((art / "manifest.json").read_text())["info"]["submission"]
    assert "CoLA.tsv" in sub["missing"] and "AX.tsv" not in sub["missing"]


def test_training_glue_all_names_tasks_without_data(multi, tmp_path):
    ws, _ = multi
    result = cli("finetune-teacher", "--glue-all", "-w", ws, ok=False)
    assert result.exit_code != 0
    text = flat(result.output + result.stderr)
    assert "finetune-teacher failed for 5 of 9 tasks (published: MRPC, STS-B, MNLI, RTE)" in text
    for task in ("CoLA", "SST-2", "QQP", "QNLI", "WNLI"):
        assert f"{task}: no {task} data: folder" in text
    assert "MRPC/finetune-teacher/v1 is up to date" in text  # same params and inputs
