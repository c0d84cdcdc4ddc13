"""A newcomer's data mistakes, caught before any work (docs/your-data-and-model.md): changed data,
a teacher without its tokenizer, bad labels, IOB1 tags, conflicting options. Each one a
CLI run that fails with a message naming the problem and publishes nothing."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from badinputs import expect, fails
from conftest import FAST, cli, flat, manifest, set_yaml, versions
from test_token_classification import sentences, write_conll
from test_user_tasks import _init, _rows, _write_csv, data  # noqa: F401 - data is a fixture


def test_an_edited_train_file_makes_the_teacher_stale(tmp_path, tiny_model_dir,
                                                     data):  # noqa: F811
    ws = _init(tmp_path / "ws", tiny_model_dir, data)
    cli("finetune-teacher", "-w", ws)
    recorded = manifest(ws, "finetune-teacher", task="intents")["data_files"]
    assert set(recorded) == {"train", "test"} and len(recorded["train"]["sha256"]) == 64
    assert "up to date" in flat(cli("finetune-teacher", "-w", ws).output)
    _write_csv(data["train"], _rows(60, 7), header=("utterance", "intent"))  # new rows
    out = flat(cli("finetune-teacher", "-w", ws).output)
    assert "up to date" not in out
    assert versions(ws, "finetune-teacher", task="intents") == ["v1", "v2"]
    changed = manifest(ws, "finetune-teacher", "v2", task="intents")["data_files"]
    assert changed["train"]["sha256"] != recorded["train"]["sha256"]
    assert changed["test"] == recorded["test"]


def test_an_adopted_teacher_without_tokenizer_files_is_refused(tmp_path, tiny_model_dir,
                                                               glue_dir):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, teacher / name)
    ws = tmp_path / "ws"
    cli("init", ws, "--teacher", teacher, "--glue-dir", glue_dir)
    set_yaml(ws, FAST)
    fails(ws, ["finetune-teacher"], 2, f"{teacher} has no tokenizer files",
          "tokenizer.json, vocab.txt", "nothing was run")
    assert versions(ws, "finetune-teacher") == []


def test_a_truncated_weights_file_is_named(tmp_path, tiny_model_dir, glue_dir):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, teacher)
    weights = teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    ws = tmp_path / "ws"
    cli("init", ws, "--teacher", teacher, "--glue-dir", glue_dir)
    set_yaml(ws, FAST)
    fails(ws, ["finetune-teacher"], 2, f"its weights file ({weights}) is corrupted or truncated")


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(("text", "label"))
        w.writerows(rows)
    return path


def _task(tmp_path, model, train: Path, *extra: str) -> Path:
    ws = tmp_path / f"ws-{train.stem}"
    cli("init", ws, "--model", model, "--task", "mine", "--train", train, *extra)
    set_yaml(ws, FAST)
    return ws


def test_label_mistakes_are_refused_before_any_work(tmp_path, tiny_model_dir):
    texts = [f"the cat sat on mat {i}" for i in range(20)]
    one = _task(tmp_path, tiny_model_dir, _csv(tmp_path / "one.csv",
                                               [(t, "yes") for t in texts]))
    fails(one, ["finetune-teacher"], 2, "one.csv: the label column 'label' has one class 'yes'",
          "at least two classes")
    mixed = _task(tmp_path, tiny_model_dir, _csv(tmp_path / "mixed.csv", [
        (t, "positive" if i % 2 else "1") for i, t in enumerate(texts)]))
    fails(mixed, ["finetune-teacher"], 2, "mixed.csv: the label column 'label' mixes class ids "
          "and class names: '1' (line 2) and 'positive' (line 3)")
    for bad in ("inf", "nan"):
        scores = _task(tmp_path, tiny_model_dir, _csv(tmp_path / f"scores-{bad}.csv", [
            (t, bad if i == 4 else f"{i / 10:.1f}") for i, t in enumerate(texts)]))
        fails(scores, ["finetune-teacher"], 2, f"scores-{bad}.csv: line 6: the label column "
              "'label'", "not a finite number" if bad == "inf" else "NaN")
    word = _task(tmp_path, tiny_model_dir, _csv(tmp_path / "word.csv", [
        (t, "high" if i == 3 else f"{i / 10:.1f}") for i, t in enumerate(texts)]),
        "--kind", "regression")
    fails(word, ["finetune-teacher"], 2, "word.csv: line 5: the label column 'label' of a "
          "regression task holds 'high', not a number")
    for ws in (one, mixed, word):
        assert versions(ws, "finetune-teacher", task="mine") == []


def test_bad_json_lines_and_a_wrong_format_name_the_file_and_line(tmp_path, tiny_model_dir):
    lines = tmp_path / "bad.jsonl"
    good = [json.dumps({"text": f"the cat {i}", "label": "a" if i % 2 else "b"})
            for i in range(10)]
    lines.write_text("\n".join([*good[:3], '{"text": "the dog", "label": ', *good[3:]]) + "\n")
    ws = _task(tmp_path, tiny_model_dir, lines)
    fails(ws, ["finetune-teacher"], 2, "bad.jsonl: line 4 is not valid JSON")
    comma = _csv(tmp_path / "comma.csv", [(f"the cat {i}", "a" if i % 2 else "b")
                                          for i in range(10)])
    ws = _task(tmp_path, tiny_model_dir, comma, "--format", "tsv")
    fails(ws, ["finetune-teacher"], 2, "comma.csv: read as TSV (--format tsv", "is it CSV? "
          "Set --format csv")


def test_iob1_tags_are_read_as_bio(tmp_path, tiny_model_dir):
    """Entities opened by I-X (IOB1) in every sentence: no B- tag in the file at all."""
    rows = [(words, [t.replace("B-", "I-") for t in tags]) for words, tags in sentences(48, 0)]
    train = write_conll(tmp_path / "iob1.conll", rows)
    ws = tmp_path / "ws"
    cli("init", ws, "--model", tiny_model_dir, "--task", "ner", "--train", train)
    set_yaml(ws, FAST)
    text = flat(cli("finetune-teacher", "-w", ws, "--max-steps", "1").output)
    assert "start an entity with I-" in text and "read as B-" in text
    labels = manifest(ws, "finetune-teacher", task="ner")["info"]["labels"]
    assert {"B-person", "I-person", "B-place", "I-place", "O"} <= set(labels)


def test_validation_file_and_split_conflict(tmp_path, tiny_model_dir, data):  # noqa: F811
    expect(cli("init", tmp_path / "ws", "--model", tiny_model_dir, "--task", "intents",
               "--train", data["train"], "--validation", data["test"], "--validation-split",
               "0.2", "--text-column", "utterance", "--label-column", "intent", ok=False),
           2, "--validation", "--validation-split 0.2: give one")
    assert not (tmp_path / "ws").exists()
