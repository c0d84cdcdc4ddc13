"""The user's own task: ``theseus init --task NAME --train ... --test ...`` and the whole
pipeline on it (tiny model, generated CSV data), its held-out validation split, every
data format, and bad data caught before any work."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from badinputs import expect, fails
from conftest import FAST as FAST_GLUE
from conftest import WORDS, cli, manifest, set_yaml, versions, write_dataset

from theseus_cli.workspace.config import load_config

CLASSES = ("animal", "food", "place")
TOPIC = {"animal": ["cat", "dog", "bird", "horse", "cow"], "food": ["bread", "milk", "cake",
         "rice", "soup"], "place": ["house", "city", "town", "river", "school"]}
FAST = {k: v for k, v in FAST_GLUE.items()}


def _rows(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = CLASSES[i % 3]
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        words.insert(rng.randint(0, len(words)), rng.choice(TOPIC[label]))
        out.append((" ".join(words), label))
    return out


def _write_csv(path: Path, rows, header=("utterance", "intent")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    d = tmp_path / "data"
    d.mkdir()
    return {"train": _write_csv(d / "train.csv", _rows(60, 0)),
            "test": _write_csv(d / "test.csv", _rows(21, 1))}


def _init(ws: Path, model: Path, data: dict[str, Path], *extra: str) -> Path:
    cli("init", ws, "--model", model, "--task", "intents", "--train", data["train"],
        "--test", data["test"], "--text-column", "utterance", "--label-column", "intent",
        *extra)
    set_yaml(ws, FAST)
    return ws


def test_pipeline_on_the_users_csv(tmp_path, tiny_model_dir, data):
    ws = _init(tmp_path / "ws", tiny_model_dir, data)
    config = load_config(ws)
    assert config.tasks == ["intents"]
    task = config.task_definition("intents")
    assert task.label_names == CLASSES and task.kind == "sequence-classification"
    train_rows, dev_rows = task.holdout()
    assert len(dev_rows) == 6 and len(train_rows) == 54  # 10% of each class of 20
    assert task.holdout() == (train_rows, dev_rows)  # the same rows every time
    for command in (["replace"], ["finetune-successor"], ["evaluate"],
                    ["export", "--format", "hf,onnx", "--no-card-speed"]):
        cli(*command, "-w", ws)
    teacher = manifest(ws, "finetune-teacher", task="intents")
    assert set(teacher["metrics"]) >= {"accuracy", "macro_f1", "score"}
    assert teacher["info"]["dev_examples"] == 6 and teacher["info"]["train_examples"] == 54
    assert teacher["info"]["validation_rows"] == dev_rows  # recorded, the same for every stage
    evaluation = manifest(ws, "evaluate", task="intents")
    assert {"teacher_accuracy", "successor_macro_f1", "retention", "teacher_test_accuracy",
            "successor_test_macro_f1", "majority_test_accuracy"} <= set(evaluation["metrics"])
    exported = json.loads((ws / "artifacts/intents/export/v1/model/config.json").read_text())
    assert exported["id2label"] == {"0": "animal", "1": "food", "2": "place"}
    # the labelled test file scores the exported model too: PyTorch as evaluate did, ONNX
    export = manifest(ws, "export", task="intents")["metrics"]
    assert export["pytorch_test_score"] == pytest.approx(evaluation["metrics"][
        "successor_test_accuracy"], abs=1e-9)
    assert export["onnx_test_score"] == pytest.approx(export["pytorch_test_score"], abs=0.02)
    card = (ws / "artifacts/intents/export/v1/README.md").read_text()
    assert "nyu-mll/glue" not in card and "GLUE" not in card and "intents" in card


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "saved"])
def test_every_format_gives_the_same_task(tmp_path, tiny_model_dir, data, fmt):
    import datasets

    rows = _rows(60, 0)
    ds = datasets.Dataset.from_dict({"utterance": [r[0] for r in rows],
                                     "intent": [r[1] for r in rows]})
    train = write_dataset(ds, tmp_path / f"train.{fmt}", fmt)
    ws = _init(tmp_path / "ws", tiny_model_dir, {"train": train, "test": data["test"]})
    task = load_config(ws).task_definition("intents")
    assert task.label_names == CLASSES
    dev = task.load("dev")
    assert len(dev) == 6 and set(dev["label"]) == {0, 1, 2}
    assert task.load("test")["label"][:3] == [0, 1, 2]


def test_float_labels_make_a_regression_task(tmp_path, tiny_model_dir, data):
    rows = [(text, f"{i % 5 + 0.5:.1f}") for i, (text, _) in enumerate(_rows(40, 2))]
    train = _write_csv(tmp_path / "scores.csv", rows, header=("utterance", "score"))
    cli("init", tmp_path / "ws", "--model", tiny_model_dir, "--task", "scores", "--train",
        train, "--text-column", "utterance", "--label-column", "score")
    task = load_config(tmp_path / "ws").task_definition("scores")
    assert task.is_regression and task.num_labels == 1 and task.metrics[0] == "pearson"
    assert len(task.load("dev")) == 4  # not stratified: 10% of all rows
    set_yaml(tmp_path / "ws", FAST)
    cli("finetune-teacher", "-w", tmp_path / "ws")
    metrics = manifest(tmp_path / "ws", "finetune-teacher", task="scores")["metrics"]
    assert {"pearson", "spearmanr", "mse", "score"} <= set(metrics)


# ------------------------------------------------ bad data: exit 2 before any work
def test_unknown_column_lists_the_columns(tmp_path, tiny_model_dir, data):
    ws = tmp_path / "ws"
    cli("init", ws, "--model", tiny_model_dir, "--task", "intents", "--train", data["train"],
        "--text-column", "text", "--label-column", "intent")
    set_yaml(ws, FAST)
    fails(ws, ["replace"], 2, "no column 'text'; the columns are utterance, intent")
    assert versions(ws, "finetune-teacher", task="intents") == []


def test_a_test_label_train_never_has(tmp_path, tiny_model_dir, data):
    _write_csv(data["test"], [*_rows(6, 1), ("the cat sat", "weather"), ("rain", "weather")])
    ws = _init(tmp_path / "ws", tiny_model_dir, data)
    fails(ws, ["replace"], 2, "test.csv: the test split has labels that train never has: "
          "'weather' (2 rows)")
    assert versions(ws, "finetune-teacher", task="intents") == []


def test_missing_file_and_empty_text_before_any_work(tmp_path, tiny_model_dir, data):
    ws = _init(tmp_path / "ws", tiny_model_dir, data)
    data["test"].unlink()
    fails(ws, ["replace"], 2, "the test file", "does not exist", "tasks.intents.test")
    _write_csv(data["test"], _rows(6, 1))
    rows = _rows(60, 0)
    rows[4] = ("  ", "food")
    _write_csv(data["train"], rows)
    fails(ws, ["replace"], 2, "line 6: the text column 'utterance' is empty")
    assert versions(ws, "finetune-teacher", task="intents") == []


def test_init_errors(tmp_path, tiny_model_dir, data):
    expect(cli("init", tmp_path / "a", "--task", "MRPC", "--train", data["train"], ok=False),
           2, "'MRPC' is the GLUE task MRPC; give your task another name")
    expect(cli("init", tmp_path / "b", "--test", data["test"], ok=False), 2,
           "describe your own task: give its training file with --train")
    expect(cli("init", tmp_path / "c", "--train", data["train"], ok=False), 2,
           "name your task with one --task NAME")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "saved"])
def test_regression_in_every_format(tmp_path, tiny_model_dir, fmt):
    """Float scores make a regression task whatever the format: the same held-out rows
    (not stratified) and the same float labels."""
    import datasets

    rows = _rows(40, 2)
    ds = datasets.Dataset.from_dict({"utterance": [t for t, _ in rows],
                                     "score": [float(i % 5) + 0.5 for i in range(len(rows))]})
    path = write_dataset(ds, tmp_path / f"train.{fmt}", fmt)
    cli("init", tmp_path / "ws", "--model", tiny_model_dir, "--task", "scores", "--train", path,
        "--text-column", "utterance", "--label-column", "score")
    task = load_config(tmp_path / "ws").task_definition("scores")
    assert task.kind == "regression" and task.label_names == ()
    dev = task.load("dev")
    assert len(dev) == 4 and dev["label"] == [ds[i]["score"] for i in task.holdout()[1]]
